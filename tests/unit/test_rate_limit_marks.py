"""``rate_limit`` marks and ``init_rate_limits``, on views defined inside each test.
(The app's own views are marked at import, before any test could change the
decorator: these tests are what checks it.)"""

from __future__ import annotations

import pytest
from flask import Flask, request

from myapp.errors import register_error_handlers
from myapp.ratelimit import init_rate_limits, rate_limit


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        PROXY_FIX_X_FOR=0,
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_PER_IP="2 per minute",
        RATELIMIT_PER_NAME="1 per minute",
        RATELIMIT_BURST="2 per minute",  # an operator may well set it like PER_IP
    )

    @app.get("/plain")
    @rate_limit("RATELIMIT_PER_IP")
    def plain():
        return "ok"

    # Two limits on one view: a looser one per IP and a tighter one per name.
    @app.get("/named/<name>")
    @rate_limit("RATELIMIT_PER_IP")
    @rate_limit(
        "RATELIMIT_PER_NAME",
        key_func=lambda: request.view_args["name"],
        message="Too many tries for this name.",
    )
    def named(name):
        return name

    @app.get("/stacked")
    @rate_limit("RATELIMIT_PER_IP")
    @rate_limit("RATELIMIT_BURST")
    def stacked():
        return "ok"

    init_rate_limits(app)
    register_error_handlers(app)
    return app


def statuses(client, path: str, times: int) -> list[int]:
    return [client.get(path).status_code for _ in range(times)]


class TestMarkedViews:
    def test_marked_view_when_over_its_configured_limit_answers_429_with_the_default_message(
        self, app
    ):
        client = app.test_client()

        assert statuses(client, "/plain", 2) == [200, 200]
        response = client.get("/plain")

        assert response.status_code == 429
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["detail"] == "Too many requests; try again later."

    def test_view_with_two_marks_when_either_is_spent_answers_429_with_its_message(self, app):
        client = app.test_client()

        assert statuses(client, "/named/ada", 1) == [200]
        tight = client.get("/named/ada")
        assert (tight.status_code, tight.get_json()["detail"]) == (
            429,
            "Too many tries for this name.",
        )
        # Another name has a count of its own...
        assert statuses(client, "/named/bob", 1) == [200]
        # ...until the per-IP limit (2 passed requests) is spent too.
        loose = client.get("/named/carol")
        assert (loose.status_code, loose.get_json()["detail"]) == (
            429,
            "Too many requests; try again later.",
        )

    def test_view_with_two_marks_when_configured_alike_counts_each_request_once_per_mark(self, app):
        # Same limit, same key: were their counts shared, each request would be
        # counted twice and the view would refuse at half its configured limit.
        client = app.test_client()

        assert statuses(client, "/stacked", 3) == [200, 200, 429]

    def test_marked_view_when_limits_are_counted_keeps_each_view_apart(self, app):
        client = app.test_client()

        assert statuses(client, "/plain", 2) == [200, 200]
        assert statuses(client, "/named/ada", 1) == [200]
