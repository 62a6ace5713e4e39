"""GET /health"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from myapp.ratelimit import limiter_of
from tests.support.database import variant_app


class TestHealth:
    def test_health_when_requested_returns_ok_without_touching_database(
        self, client, sql_statements
    ):
        response = client.get("/health")

        assert response.status_code == 200
        assert response.get_json() == {"status": "ok"}
        assert sql_statements == []

    def test_sql_recorder_when_request_queries_records_statements(
        self, client, auth_headers, sql_statements
    ):
        # The probe above can fail: a request that reads the database is seen.
        client.get("/api/v1/users/me", headers=auth_headers)

        assert any("FROM users" in statement for statement in sql_statements)


class TestReady:
    def test_ready_when_database_answers_returns_200_with_checks(self, client):
        response = client.get("/ready")

        assert response.status_code == 200
        assert response.get_json() == {"status": "ready", "checks": {"database": "ok"}}

    def test_ready_when_database_fails_returns_503_problem_naming_it(self, client, mocker):
        mocker.patch(
            "myapp.health.ping_database", side_effect=OperationalError("SELECT 1", {}, None)
        )

        response = client.get("/ready")

        body = response.get_json()
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert body["checks"] == {"database": "unavailable"}
        assert response.headers["Retry-After"] == "5"

    def test_ready_when_redis_configured_checks_it_too(self):
        with variant_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379") as app:
            response = app.test_client().get("/ready")

        assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}

    def test_ready_when_redis_client_raises_returns_503(self, mocker):
        with variant_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379") as app:
            storage = limiter_of(app).storage
            mocker.patch.object(storage, "check", side_effect=RedisError("protocol error"))
            response = app.test_client().get("/ready")

        assert response.status_code == 503
        assert response.get_json()["checks"] == {"database": "ok", "redis": "unavailable"}

    def test_ready_when_redis_down_returns_503(self):
        # Nothing listens on port 1: the connection is refused at once.
        with variant_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1") as app:
            response = app.test_client().get("/ready")

        assert response.status_code == 503
        assert response.get_json()["checks"]["redis"] == "unavailable"


class TestDatabaseErrors:
    def test_api_call_when_database_unreachable_returns_503_problem(self, client, mocker):
        mocker.patch(
            "myapp.users.repository.UserRepository.find_conflicts",
            side_effect=OperationalError("SELECT", {}, ConnectionError("gone")),
        )

        response = client.post(
            "/api/v1/auth/register",
            json={"email": "a@example.com", "username": "abc", "password": "a long password!"},
        )

        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert "database" in response.get_json()["detail"]

    def test_limited_call_when_redis_down_returns_503_not_unlimited(self, caplog):
        with (
            variant_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1") as app,
            caplog.at_level(logging.ERROR),
        ):
            response = app.test_client().post(
                "/api/v1/auth/login", json={"email": "a@example.com", "password": "x"}
            )

        assert response.status_code == 503
        assert response.get_json()["detail"] == "Rate limiting is unavailable; retry shortly."
        assert response.headers["Retry-After"] == "5"
        # The kind of failure only: a client error's text can name hosts and ports.
        (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert record.getMessage() == "Rate-limit storage unavailable: ConnectionError"
