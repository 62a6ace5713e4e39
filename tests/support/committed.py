"""Databases of a test's own, WITHOUT rollback isolation.

For tests that need several real connections at once (races, faults, other
processes), which one shared test transaction cannot give. The database is
created for the test and dropped after it, so nothing leaks into other tests.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from myapp import create_app
from myapp.extensions import db
from tests.support.database import TestDatabase, database_url_for_tests

# The one account the tests on their own databases register and log in with.
USER = {"email": "ada@example.com", "username": "ada", "password": "a long password!"}
LOGIN = {"email": USER["email"], "password": USER["password"]}


def bearer_for(client) -> dict[str, str]:
    """Register USER through ``client``, log in, and return the Authorization header."""
    client.post("/api/v1/auth/register", json=USER)
    token = client.post("/api/v1/auth/login", json=LOGIN).get_json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def race(app: Flask, requests: list[Callable[[FlaskClient], TestResponse]]) -> list[int]:
    """Send each request from its own thread and test client, all released at the
    same instant; their statuses, in order."""
    barrier = threading.Barrier(len(requests))

    def send(request: Callable[[FlaskClient], TestResponse]) -> int:
        client = app.test_client()
        barrier.wait()
        return request(client).status_code

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(send, requests))


@contextmanager
def own_database(suffix: str) -> Iterator[TestDatabase]:
    """A fresh database of the suite's kind: PostgreSQL ``<test database>_<suffix>``,
    or a SQLite file in a temporary folder (several connections can share a file,
    not an in-memory database)."""
    url = database_url_for_tests()
    if url.get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield TestDatabase(url.set(database=os.path.join(folder, f"{suffix}.db")))
        return
    database = TestDatabase(url.set(database=f"{url.database}_{suffix}"))
    database.create()
    try:
        yield database
    finally:
        database.drop()


@contextmanager
def app_on(uri: str, **overrides) -> Iterator[Flask]:
    """A testing app on ``uri`` with the schema created; its connections closed after."""
    app = create_app("testing", overrides={"SQLALCHEMY_DATABASE_URI": uri, **overrides})
    with app.app_context():
        db.create_all()
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()


@contextmanager
def committed_app(suffix: str) -> Iterator[Flask]:
    with own_database(suffix) as database, app_on(database.uri) as app:
        yield app
