"""Every error is problem+json: unknown routes, wrong methods, bodies, crashes."""

from __future__ import annotations

import logging
from unittest import mock

import pytest
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import NotFound

from myapp import create_app
from myapp.extensions import db
from tests.support.problems import assert_problem


class TestHttpErrors:
    def test_unknown_route_when_requested_returns_404_problem(self, client):
        body = assert_problem(client.get("/no/such/page"), 404)

        assert body["title"] == "Not Found"
        assert body["detail"] == NotFound.description  # Werkzeug's own words

    def test_wrong_method_when_requested_returns_405_problem_with_allow(self, client):
        response = client.delete("/api/v1/auth/login")

        assert_problem(response, 405)
        assert "POST" in response.headers["Allow"]

    def test_body_when_over_max_content_length_returns_413_problem(self, app, client):
        size = app.config["MAX_CONTENT_LENGTH"] + 1

        response = client.post(
            "/api/v1/auth/register", data=b"x" * size, content_type="application/json"
        )

        assert_problem(response, 413)

    def test_body_when_malformed_json_returns_400_problem(self, client):
        response = client.post(
            "/api/v1/auth/login", data="{not json", content_type="application/json"
        )

        body = assert_problem(response, 400)
        assert body["errors"] == {"json": ["Invalid JSON body."]}
        assert body["detail"] == "The request body could not be parsed."

    def test_body_when_not_sent_as_json_returns_415_saying_how_to_send_it(self, client):
        response = client.post("/api/v1/auth/login", data="{}", content_type="text/plain")

        body = assert_problem(response, 415)
        assert body["detail"] == (
            "Send the request body as JSON with 'Content-Type: application/json'."
        )

    def test_validation_error_when_returned_lists_errors_by_location_and_field(self, client):
        body = assert_problem(client.post("/api/v1/auth/register", json={}), 422)

        assert body["detail"] == "The request contains invalid fields."

        assert set(body["errors"]["json"]) == {"email", "username", "password"}


class TestUnexpectedErrors:
    @pytest.fixture
    def crashing_client(self):
        app = create_app("testing")

        @app.get("/boom")
        def boom():
            raise RuntimeError("secret internals /etc/passwd")

        return app.test_client()

    def test_unhandled_exception_when_raised_returns_500_problem_without_traceback(
        self, crashing_client, json_log
    ):
        response = crashing_client.get("/boom", headers={"X-Request-ID": "crash-1"})

        body = assert_problem(response, 500)
        assert body["detail"] == "An unexpected error occurred."
        assert "secret internals" not in response.get_data(as_text=True)
        assert "Traceback" not in response.get_data(as_text=True)
        # The operator still sees it: one JSON line with the traceback, under the
        # request id the caller was given, so a support ticket leads to it.
        (entry,) = [e for e in json_log() if e["level"] == "ERROR"]
        assert (entry["logger"], entry["message"]) == ("myapp", "Unhandled exception")
        assert entry["request_id"] == body["request_id"] == "crash-1"
        assert entry["exception"].startswith("Traceback (most recent call last):")
        assert entry["exception"].endswith("RuntimeError: secret internals /etc/passwd")


class TestDatabaseUnavailable:
    """A database that refuses or drops the connection: 503 with Retry-After, and a
    log line naming the kind of failure only (its text may hold the server's address
    or a user name)."""

    @pytest.fixture
    def failing_app(self):
        app = create_app("testing")

        @app.get("/query")
        def query():
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("db.internal refused"))

        return app

    def assert_unavailable(self, response, caplog) -> None:
        body = assert_problem(response, 503)
        assert body["detail"] == "The database is unavailable; retry shortly."
        assert response.headers["Retry-After"] == "5"
        (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert record.getMessage() == "Database unavailable: OperationalError"

    def test_query_when_connection_refused_answers_503(self, failing_app, caplog):
        with caplog.at_level(logging.ERROR):
            response = failing_app.test_client().get("/query")

        self.assert_unavailable(response, caplog)

    def test_query_when_even_the_rollback_fails_still_answers_503(
        self, failing_app, caplog, monkeypatch
    ):
        # The connection is gone: rolling back on it raises too.
        gone = OperationalError("ROLLBACK", {}, ConnectionResetError("reset"))
        monkeypatch.setattr(db.session, "rollback", mock.Mock(side_effect=gone))
        with caplog.at_level(logging.ERROR):
            response = failing_app.test_client().get("/query")

        self.assert_unavailable(response, caplog)
        db.session.rollback.assert_called_once_with()
