"""The failed-login budget per account holds under real concurrency and whichever
identifier is typed: at most RATELIMIT_LOGIN_FAILURES wrong passwords are checked
per account and window; the rest get 429 without a password check."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
import redis
from limits import parse
from sqlalchemy import func, select

from myapp.auth.models import AuthSession
from myapp.extensions import db
from myapp.passwords import PasswordHasher
from tests.support.committed import USER, app_on, own_database, race

LOGIN = "/api/v1/auth/login"
REDIS_URL = "redis://127.0.0.1:6379"
GUESSES = 30


@pytest.fixture
def served_app():
    """An app on a database of its own (real connections, one per thread), counting
    in the real Redis, as production does, under a prefix of its own. The per-IP
    limit is raised: each guess stands for another address."""
    prefix = f"myapp-test-{uuid.uuid4().hex}"
    settings = {
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": prefix,
        "RATELIMIT_LOGIN": "1000 per minute",
    }
    with own_database("throttle") as database, app_on(database.uri, **settings) as app:
        yield app
    server = redis.Redis.from_url(REDIS_URL)
    keys = list(server.scan_iter(match=f"*{prefix}*"))
    if keys:
        server.delete(*keys)


class TestConcurrentGuesses:
    def test_guesses_when_sent_at_once_check_at_most_the_budget(self, served_app, mocker):
        budget = parse(served_app.config["RATELIMIT_LOGIN_FAILURES"]).amount
        served_app.test_client().post("/api/v1/auth/register", json=USER)
        checks = mocker.spy(PasswordHasher, "verify")
        wrong = {"email": USER["email"], "password": "not the password"}

        statuses = race(served_app, [lambda client: client.post(LOGIN, json=wrong)] * GUESSES)

        assert Counter(statuses) == {401: budget, 429: GUESSES - budget}
        assert checks.call_count == budget

    def test_guesses_when_split_between_email_and_username_share_one_budget(self, served_app):
        budget = parse(served_app.config["RATELIMIT_LOGIN_FAILURES"]).amount
        client = served_app.test_client()
        client.post("/api/v1/auth/register", json=USER)
        by_email = {"email": USER["email"], "password": "wrong"}
        by_username = {"username": USER["username"].upper(), "password": "wrong"}
        for n in range(budget):
            client.post(LOGIN, json=by_email if n % 2 else by_username)

        response = client.post(LOGIN, json={"username": USER["username"], "password": "x"})

        assert response.status_code == 429
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["detail"] == (
            "Too many failed logins for this account; try again later."
        )
        assert 0 < int(response.headers["Retry-After"]) <= 3600

    def test_right_passwords_when_more_than_the_budget_never_lock_the_owner_out(self, served_app):
        budget = parse(served_app.config["RATELIMIT_LOGIN_FAILURES"]).amount
        client = served_app.test_client()
        client.post("/api/v1/auth/register", json=USER)
        right = {"email": USER["email"], "password": USER["password"]}

        statuses = [client.post(LOGIN, json=right).status_code for _ in range(budget + 5)]

        assert set(statuses) == {200}
        with served_app.app_context():  # each of them started a session
            assert db.session.scalar(select(func.count()).select_from(AuthSession)) == budget + 5
