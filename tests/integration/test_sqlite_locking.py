"""SQLite with several processes (gunicorn workers) on one file: a write that meets
another connection's write lock waits for it instead of failing.

Always on a SQLite file of the test's own, whatever the suite's database: this is
SQLite's locking, which the in-memory test database cannot show.
"""

from __future__ import annotations

import sqlite3
import threading

import pytest

from tests.support.committed import LOGIN, USER, app_on, bearer_for


@pytest.fixture
def sqlite_file(tmp_path):
    return tmp_path / "app.db"


@pytest.fixture
def served_app(sqlite_file):
    with app_on(f"sqlite:///{sqlite_file}") as app:
        yield app


class TestWriteLock:
    def test_login_when_another_process_holds_the_write_lock_waits_and_succeeds(
        self, served_app, sqlite_file
    ):
        client = served_app.test_client()
        assert client.post("/api/v1/auth/register", json=USER).status_code == 201
        # Another process mid-write: it holds the write lock for a moment.
        other = sqlite3.connect(sqlite_file, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE users SET updated_at = updated_at")
        release = threading.Timer(0.3, other.execute, ["COMMIT"])
        release.start()

        try:
            response = client.post("/api/v1/auth/login", json=LOGIN)
        finally:
            release.join()
            other.close()

        assert response.status_code == 200, response.get_json()
        assert response.get_json()["token_type"] == "bearer"
        with sqlite3.connect(sqlite_file) as check:
            assert check.execute("SELECT count(*) FROM auth_sessions").fetchone() == (1,)

    def test_read_when_another_process_holds_the_write_lock_is_not_blocked(
        self, served_app, sqlite_file
    ):
        client = served_app.test_client()
        headers = bearer_for(client)
        other = sqlite3.connect(sqlite_file, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE users SET username = 'changing'")

        try:
            response = client.get("/api/v1/users/me", headers=headers)
        finally:
            other.execute("ROLLBACK")
            other.close()

        # Reads take no write lock: they see the last committed state at once.
        assert response.status_code == 200
        assert response.get_json()["username"] == "ada"
