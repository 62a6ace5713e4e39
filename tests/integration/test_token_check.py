"""The token check on a real pooled engine, as in production (the rest of the
suite runs on one shared test connection instead).

It runs on every authenticated request, so what it costs is part of its contract:
one statement, outside any transaction (no BEGIN or ROLLBACK round trips), and no
connection check (ping) for a connection that answered a moment ago.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from sqlalchemy import event

from myapp.extensions import db
from tests.support.committed import LOGIN, USER, app_on, bearer_for, own_database
from tests.support.database import database_url_for_tests

IS_POSTGRESQL = database_url_for_tests().get_backend_name() == "postgresql"


@contextmanager
def app_with_pool(tmp_path, **overrides) -> Iterator[Flask]:
    """An app on a database of its own, of the suite's kind, with a real pool."""
    if IS_POSTGRESQL:
        with own_database("token_check") as database, app_on(database.uri, **overrides) as app:
            yield app
    else:
        with app_on(f"sqlite:///{tmp_path / 'app.db'}", **overrides) as app:
            yield app


@pytest.fixture
def served_app(tmp_path) -> Iterator[Flask]:
    with app_with_pool(tmp_path) as app:
        yield app


@pytest.fixture
def headers(served_app) -> dict[str, str]:
    return bearer_for(served_app.test_client())


def in_transaction(dbapi_connection) -> bool:
    if IS_POSTGRESQL:
        from psycopg.pq import TransactionStatus

        return dbapi_connection.info.transaction_status != TransactionStatus.IDLE
    return dbapi_connection.in_transaction


@pytest.fixture
def executed(served_app) -> Iterator[list[tuple[str, bool]]]:
    """(statement, whether the connection was inside a transaction after it), as run."""
    runs: list[tuple[str, bool]] = []

    def record(connection, cursor, statement, parameters, context, executemany):
        runs.append((statement, in_transaction(connection.connection.dbapi_connection)))

    with served_app.app_context():
        engine = db.engine
    event.listen(engine, "after_cursor_execute", record)
    yield runs
    event.remove(engine, "after_cursor_execute", record)


class TestTokenCheckCost:
    def test_me_when_token_valid_runs_one_statement_outside_a_transaction(
        self, served_app, headers, executed
    ):
        response = served_app.test_client().get("/api/v1/users/me", headers=headers)

        assert response.status_code == 200
        assert response.get_json()["email"] == USER["email"]
        assert len(executed) == 1, executed
        statement, left_open = executed[0]
        assert statement.startswith("SELECT users.id")
        assert "JOIN auth_sessions" in statement
        assert left_open is False  # autocommit: nothing to roll back afterwards

    def test_me_when_token_revoked_answers_401_after_one_statement(
        self, served_app, headers, executed
    ):
        client = served_app.test_client()
        assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
        executed.clear()

        response = client.get("/api/v1/users/me", headers=headers)

        assert response.status_code == 401
        assert response.get_json()["detail"] == "Token is no longer valid."
        assert len(executed) == 1

    def test_profile_update_when_user_came_from_token_check_saves_the_change(
        self, served_app, headers
    ):
        # The checked user is attached to the session without a query: the
        # services must still be able to change and save it.
        client = served_app.test_client()

        response = client.patch("/api/v1/users/me", headers=headers, json={"username": "ada2"})

        assert response.status_code == 200
        assert response.get_json()["username"] == "ada2"
        assert client.get("/api/v1/users/me", headers=headers).get_json()["username"] == "ada2"


@pytest.mark.skipif(
    not IS_POSTGRESQL,
    reason="SQLite connections are never pinged: "
    "nothing can drop them (the PostgreSQL environment runs these)",
)
class TestPingAfterIdle:
    @pytest.fixture(params=[3600, 0], ids=["busy", "idle"])
    def pinged_app(self, request, tmp_path):
        """An app whose connections count as just used (3600 s) or always idle (0 s)."""
        with app_with_pool(tmp_path, DATABASE_PING_AFTER_IDLE_SECONDS=request.param) as app:
            yield app, request.param

    def test_request_pings_only_connections_idle_past_threshold(self, pinged_app, mocker):
        app, threshold = pinged_app
        client = app.test_client()
        client.post("/api/v1/auth/register", json=USER)  # the pool now holds a connection
        checkouts = []
        with app.app_context():
            pings = mocker.spy(db.engine.dialect, "do_ping")
            event.listen(db.engine, "checkout", lambda *args: checkouts.append(1))

        response = client.post("/api/v1/auth/login", json=LOGIN)

        assert response.status_code == 200
        assert checkouts  # the login used the pool
        assert pings.call_count == (len(checkouts) if threshold == 0 else 0)
