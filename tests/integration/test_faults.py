"""Database faults (PostgreSQL): dropped connections, and a database that goes
away and comes back. Each test has a database of its own, never the shared server
stopped: the outage is a proxy between the app and PostgreSQL being cut."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import requires_postgresql
from tests.support.committed import app_on, own_database
from tests.support.tcp_proxy import TcpProxy

pytestmark = requires_postgresql

USER = {"email": "ada@example.com", "username": "ada", "password": "a long password!"}


@pytest.fixture
def database():
    with own_database("faults") as database:
        yield database


def bearer_for(client) -> dict:
    client.post("/api/v1/auth/register", json=USER)
    tokens = client.post(
        "/api/v1/auth/login", json={"email": USER["email"], "password": USER["password"]}
    ).get_json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


class TestDroppedConnections:
    # Not named "app": pytest-flask would hold one request context (and so one
    # checked-out connection) across the whole test, which no real request does.
    @pytest.fixture
    def served_app(self, database):
        with app_on(database.uri) as served_app:
            yield served_app

    def test_request_when_app_connections_were_terminated_still_succeeds(
        self, served_app, database
    ):
        client = served_app.test_client()
        headers = bearer_for(client)  # the pool now holds a live connection
        admin = create_engine(
            database.url.set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        backends = {"name": database.url.database}
        with admin.connect() as connection:
            killed = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                backends,
            ).scalar()
            # pg_terminate_backend only signals: wait until the backends are gone, as
            # they are when a connection dies between two requests.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"), backends
            ).scalar():
                time.sleep(0.05)
        admin.dispose()

        response = client.get("/api/v1/users/me", headers=headers)

        assert killed >= 1
        assert response.status_code == 200  # pool_pre_ping replaced the dead connection
        assert response.get_json()["email"] == USER["email"]


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
            "login": client.post(
                "/api/v1/auth/login", json={"email": USER["email"], "password": USER["password"]}
            ),
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
