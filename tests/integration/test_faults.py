"""Database faults (PostgreSQL): dropped connections, and a database that goes
away and comes back. Each test has a database of its own, never the shared server
stopped: the outage is a proxy between the app and PostgreSQL being cut."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from myapp import create_app
from myapp.extensions import db
from tests.conftest import requires_postgresql
from tests.support.database import TestDatabase, database_url_for_tests
from tests.support.tcp_proxy import TcpProxy

pytestmark = requires_postgresql

USER = {"email": "ada@example.com", "username": "ada", "password": "a long password!"}


@pytest.fixture
def database():
    url = database_url_for_tests()
    database = TestDatabase(url.set(database=f"{url.database}_faults"))
    database.create()
    yield database
    database.drop()


def build_app(url):
    app = create_app("testing", overrides={"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
    return app


def bearer_for(client) -> dict:
    client.post("/api/v1/auth/register", json=USER)
    tokens = client.post(
        "/api/v1/auth/login", json={"email": USER["email"], "password": USER["password"]}
    ).get_json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


class TestDroppedConnections:
    def test_request_when_app_connections_were_terminated_still_succeeds(self, database):
        app = build_app(database.uri)
        client = app.test_client()
        headers = bearer_for(client)  # the pool now holds a live connection
        admin = create_engine(database.url.set(database="postgres"))
        with admin.connect() as connection:
            killed = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database.url.database},
            ).scalar()
        admin.dispose()

        response = client.get("/api/v1/users/me", headers=headers)

        assert killed >= 1
        assert response.status_code == 200  # pool_pre_ping replaced the dead connection
        with app.app_context():
            db.engine.dispose()


class TestDatabaseOutage:
    @pytest.fixture
    def proxied(self, database):
        proxy = TcpProxy((database.url.host or "127.0.0.1", database.url.port or 5432))
        url = database.url.set(port=proxy.port, query={"connect_timeout": "3"})
        app = build_app(url.render_as_string(hide_password=False))
        yield app, proxy
        proxy.close()
        with app.app_context():
            db.engine.dispose()

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
