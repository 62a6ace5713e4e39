"""Database faults (PostgreSQL): dropped connections, and a database that goes
away and comes back. Each test has a database of its own, never the shared server
stopped: the outage is a proxy between the app and PostgreSQL being cut."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import requires_postgresql
from tests.support.committed import LOGIN, USER, app_on, bearer_for, own_database
from tests.support.tcp_proxy import TcpProxy

pytestmark = requires_postgresql


@pytest.fixture
def database():
    with own_database("faults") as database:
        yield database


def terminate_connections(url) -> int:
    """Kill every connection to the database of ``url`` and wait until they are gone,
    as they are when connections die between two requests. Returns how many."""
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    backends = {"name": url.database}
    try:
        with admin.connect() as connection:
            killed = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                backends,
            ).scalar()
            # pg_terminate_backend only signals: wait for the backends to go.
            deadline = time.monotonic() + 10
            while (
                time.monotonic() < deadline
                and connection.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"), backends
                ).scalar()
            ):
                time.sleep(0.05)
    finally:
        admin.dispose()
    return killed


class TestDroppedConnections:
    """Connections killed between two requests. Busy connections are not pinged
    before use (database._ping_after_idle), so the two recoveries are tested apart:
    the token check's retry, and the ping of a connection that sat idle."""

    def test_me_when_recent_connections_were_terminated_retries_and_succeeds(self, database):
        # Never idle long enough to be pinged: the token check meets the dead one.
        with app_on(database.uri, DATABASE_PING_AFTER_IDLE_SECONDS=3600) as served_app:
            client = served_app.test_client()
            headers = bearer_for(client)  # the pool now holds a live connection
            killed = terminate_connections(database.url)

            response = client.get("/api/v1/users/me", headers=headers)
            after = client.get("/api/v1/users/me", headers=headers)

        assert killed >= 1
        assert response.status_code == 200  # first_row retried on a fresh connection
        assert response.get_json()["email"] == USER["email"]
        assert after.status_code == 200

    def test_login_when_idle_connections_were_terminated_succeeds(self, database):
        # Every pooled connection counts as idle: each is pinged before use.
        with app_on(database.uri, DATABASE_PING_AFTER_IDLE_SECONDS=0) as served_app:
            client = served_app.test_client()
            bearer_for(client)
            killed = terminate_connections(database.url)

            response = client.post("/api/v1/auth/login", json=LOGIN)

        assert killed >= 1
        assert response.status_code == 200  # the ping found it dead; another was used
        assert response.get_json()["token_type"] == "bearer"


class TestDatabaseOutage:
    @pytest.fixture
    def proxied(self, database):
        proxy = TcpProxy((database.url.host or "127.0.0.1", database.url.port or 5432))
        url = database.url.set(port=proxy.port, query={"connect_timeout": "3"})
        try:
            with app_on(url.render_as_string(hide_password=False)) as app:
                yield app, proxy
        finally:
            proxy.close()

    def test_outage_when_database_unreachable_answers_503_and_recovers(self, proxied):
        app, proxy = proxied
        client = app.test_client()
        headers = bearer_for(client)

        proxy.cut()
        down = {
            "me": client.get("/api/v1/users/me", headers=headers),
            "ready": client.get("/ready"),
            "login": client.post("/api/v1/auth/login", json=LOGIN),
        }
        health = client.get("/health")
        proxy.restore()
        back = client.get("/api/v1/users/me", headers=headers)
        ready = client.get("/ready")

        for name, response in down.items():
            assert response.status_code == 503, name
            assert response.mimetype == "application/problem+json", name
            assert int(response.headers["Retry-After"]) >= 5, name
        assert down["ready"].get_json()["checks"] == {"database": "unavailable"}
        assert health.status_code == 200  # liveness does not depend on the database
        assert (back.status_code, back.get_json()["email"]) == (200, USER["email"])
        assert ready.status_code == 200
