"""Proof that the rollback isolation holds, on SQLite and PostgreSQL.

The first two tests run in file order: the first commits through the API, the
second checks that nothing of it is left.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import IntegrityError

from myapp import create_app
from myapp.extensions import db
from myapp.users.models import User
from tests.factories import UserFactory
from tests.support.database import (
    RequestScopedClient,
    database_url_for_tests,
    get_test_app,
    isolated_database,
)

LEAK_EMAIL = "leak-probe@example.com"
LEAK_USER = {"email": LEAK_EMAIL, "username": "leakprobe", "password": "a long password!"}


def _count_users(email: str) -> int:
    return db.session.scalar(select(func.count()).select_from(User).where(User.email == email))


@pytest.fixture
def visible_app(tmp_path):
    """An app whose database a second connection can open, and that database's URL.

    PostgreSQL: the suite's own app. SQLite: the suite's in-memory database is
    private to its connection, so a file database with the same set-up.
    """
    url = database_url_for_tests()
    if url.get_backend_name() == "postgresql":
        yield get_test_app(), url
        return
    url = f"sqlite:///{tmp_path / 'isolation.db'}"
    app = create_app("testing", overrides={"SQLALCHEMY_DATABASE_URI": url})
    app.test_client_class = RequestScopedClient
    with app.app_context():
        db.create_all()
    yield app, url
    with app.app_context():
        db.engine.dispose()


def _count_from_second_connection(url, email: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT count(*) FROM users WHERE email = :email"), {"email": email}
            ).scalar_one()
    finally:
        engine.dispose()


class TestRollbackIsolation:
    def test_commit_through_request_when_inside_test_is_visible(self, client):
        response = client.post("/api/v1/auth/register", json=LEAK_USER)

        assert response.status_code == 201
        assert _count_users(LEAK_EMAIL) == 1

    def test_commit_from_previous_test_when_next_test_runs_is_gone(self, app):
        assert _count_users(LEAK_EMAIL) == 0

    def test_commit_through_request_when_seen_from_second_connection_is_invisible(
        self, visible_app
    ):
        app, url = visible_app
        with app.app_context(), isolated_database():
            response = app.test_client().post("/api/v1/auth/register", json=LEAK_USER)
            seen_inside = _count_users(LEAK_EMAIL)
            seen_outside = _count_from_second_connection(url, LEAK_EMAIL)

        assert response.status_code == 201
        assert (seen_inside, seen_outside) == (1, 0)
        assert _count_from_second_connection(url, LEAK_EMAIL) == 0

    def test_app_rollback_after_integrity_error_when_isolated_keeps_earlier_rows(self, app):
        kept = UserFactory()
        db.session.add(User(email=kept.email, username="dupe", password_hash="x"))

        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()

        assert _count_users(kept.email) == 1

    def test_uncommitted_work_when_request_ends_is_discarded(self, client):
        db.session.add(User(email="pending@example.com", username="pending", password_hash="x"))
        db.session.flush()

        client.get("/health")

        assert _count_users("pending@example.com") == 0
