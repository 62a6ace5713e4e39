"""Every error is problem+json: unknown routes, wrong methods, bodies, crashes."""

from __future__ import annotations

import logging

import pytest

from myapp import create_app


def assert_problem(response, status: int) -> dict:
    body = response.get_json()
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    return body


class TestHttpErrors:
    def test_unknown_route_when_requested_returns_404_problem(self, client):
        body = assert_problem(client.get("/no/such/page"), 404)

        assert body["title"] == "Not Found"

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

    def test_validation_error_when_returned_lists_errors_by_location_and_field(self, client):
        body = assert_problem(client.post("/api/v1/auth/register", json={}), 422)

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
        self, crashing_client, caplog
    ):
        with caplog.at_level(logging.ERROR):
            response = crashing_client.get("/boom")

        body = assert_problem(response, 500)
        assert body["detail"] == "An unexpected error occurred."
        assert "secret internals" not in response.get_data(as_text=True)
        assert "Traceback" not in response.get_data(as_text=True)
        assert "secret internals" in caplog.text  # the operator still sees it
