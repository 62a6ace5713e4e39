"""Races that only real concurrent connections can show (PostgreSQL)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from myapp.extensions import db
from myapp.users.models import User
from tests.conftest import requires_postgresql
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.committed import committed_app, race

pytestmark = requires_postgresql

THREADS = 8


@pytest.fixture
def real_app():
    with committed_app("concurrency") as app:
        yield app


class TestConcurrentRefresh:
    def test_refresh_when_same_token_sent_concurrently_exactly_one_succeeds(self, real_app):
        with real_app.app_context():
            user = UserFactory()
            email = user.email
        tokens = (
            real_app.test_client()
            .post("/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
            .get_json()
        )
        headers = {"Authorization": f"Bearer {tokens['refresh_token']}"}

        statuses = race(
            real_app, [lambda c: c.post("/api/v1/auth/refresh", headers=headers)] * THREADS
        )

        assert Counter(statuses) == {200: 1, 401: THREADS - 1}


class TestConcurrentRegistration:
    def test_register_when_same_email_sent_concurrently_exactly_one_account(self, real_app):
        def register(n):
            return lambda client: client.post(
                "/api/v1/auth/register",
                json={
                    "email": "Race@Example.com" if n % 2 else "race@example.com",
                    "username": f"racer{n}",
                    "password": "a long password!",
                },
                environ_base={"REMOTE_ADDR": f"198.51.100.{n}"},  # below the per-IP limit
            )

        statuses = race(real_app, [register(n) for n in range(THREADS)])

        with real_app.app_context():
            rows = db.session.scalar(
                select(func.count()).select_from(User).where(User.email == "race@example.com")
            )
        assert Counter(statuses) == {201: 1, 409: THREADS - 1}
        assert rows == 1
