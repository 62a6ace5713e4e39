"""Races that only real concurrent connections can show (PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from myapp.auth.models import AuthSession, Passkey, RecoveryCode
from myapp.database.columns import utcnow
from myapp.database.unit_of_work import UnitOfWork
from myapp.extensions import db
from myapp.outbox.compose import compose
from myapp.outbox.repository import OutboxRepository
from myapp.outbox.service import Outbox
from myapp.users.models import User
from tests.conftest import bearer, requires_postgresql
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.committed import committed_app, race
from tests.support.mfa import Authenticator
from tests.support.passkeys import SoftAuthenticator, register_passkey

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


def used_recovery_codes(app) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(RecoveryCode).where(RecoveryCode.used_at.is_not(None))
        )


class TestConcurrentSecondFactor:
    """One code, or one mfa_token, used by several requests at once: one wins."""

    @pytest.fixture
    def enrolled_user(self, real_app):
        with real_app.app_context():
            email = UserFactory().email
        client = real_app.test_client()
        login = {"email": email, "password": DEFAULT_PASSWORD}
        headers = bearer(client.post("/api/v1/auth/login", json=login).get_json()["access_token"])
        setup = client.post("/api/v1/auth/mfa/totp/setup", headers=headers).get_json()
        authenticator = Authenticator(setup["secret"])
        confirm = client.post(
            "/api/v1/auth/mfa/totp/confirm", json={"code": authenticator.code()}, headers=headers
        )
        codes = confirm.get_json()["recovery_codes"]

        def mfa_token() -> str:
            return client.post("/api/v1/auth/login", json=login).get_json()["mfa_token"]

        return mfa_token, codes

    @staticmethod
    def second_step(body):
        return lambda client: client.post("/api/v1/auth/login/mfa", json=body)

    def test_recovery_code_when_used_concurrently_exactly_one_signs_in(
        self, real_app, enrolled_user
    ):
        mfa_token, codes = enrolled_user
        bodies = [{"mfa_token": mfa_token(), "recovery_code": codes[0]} for _ in range(THREADS)]

        statuses = race(real_app, [self.second_step(body) for body in bodies])

        assert Counter(statuses) == {200: 1, 401: THREADS - 1}
        assert used_recovery_codes(real_app) == 1

    def test_mfa_token_when_used_concurrently_exactly_one_session(self, real_app, enrolled_user):
        mfa_token, codes = enrolled_user
        token = mfa_token()
        # Each with a valid recovery code of its own: only the token's single use decides.
        bodies = [{"mfa_token": token, "recovery_code": code} for code in codes[:THREADS]]

        statuses = race(real_app, [self.second_step(body) for body in bodies])

        assert Counter(statuses) == {200: 1, 401: THREADS - 1}
        # The losers' codes were given back with their rollback.
        assert used_recovery_codes(real_app) == 1


class TestConcurrentPasskey:
    """One passkey answer, or one counter value, sent by several requests at once:
    exactly one signs in (the challenge and the counter are compare-and-swaps)."""

    @pytest.fixture
    def registered(self, real_app):
        with real_app.app_context():
            email = UserFactory().email
        client = real_app.test_client()
        login = {"email": email, "password": DEFAULT_PASSWORD}
        headers = bearer(client.post("/api/v1/auth/login", json=login).get_json()["access_token"])
        return register_passkey(client, headers, SoftAuthenticator.for_app(real_app))

    @staticmethod
    def options(app, n: int) -> dict:
        # Each from an address of its own: below the per-IP login limit.
        environ = {"REMOTE_ADDR": f"198.51.100.{n}"}
        return app.test_client().post(PASSKEY_LOGIN_OPTIONS, environ_base=environ).get_json()

    @staticmethod
    def sign_in(answer: dict, n: int):
        environ = {"REMOTE_ADDR": f"203.0.113.{n}"}
        body = {"credential": answer}
        return lambda client: client.post(PASSKEY_LOGIN, json=body, environ_base=environ)

    def test_one_answer_when_sent_concurrently_signs_in_once(self, real_app, registered):
        answer = registered.authenticator.get(self.options(real_app, 0))

        statuses = race(real_app, [self.sign_in(answer, n) for n in range(THREADS)])

        assert Counter(statuses) == {200: 1, 401: THREADS - 1}
        assert sessions_of(real_app, registered) == 2  # the registering login's and this one

    def test_one_counter_value_when_used_concurrently_signs_in_once(self, real_app, registered):
        # A cloned key: fresh challenges, but every answer carries counter 1.
        answers = [
            registered.authenticator.get(self.options(real_app, n), sign_count=1)
            for n in range(THREADS)
        ]

        statuses = race(real_app, [self.sign_in(a, n) for n, a in enumerate(answers)])

        assert Counter(statuses) == {200: 1, 401: THREADS - 1}
        assert sessions_of(real_app, registered) == 2


PASSKEY_LOGIN = "/api/v1/auth/passkeys/login"
PASSKEY_LOGIN_OPTIONS = f"{PASSKEY_LOGIN}/options"


def sessions_of(app, registered) -> int:
    with app.app_context():
        user_id = db.session.scalar(select(Passkey.user_id).where(Passkey.id == registered.id))
        return db.session.scalar(
            select(func.count()).select_from(AuthSession).where(AuthSession.user_id == user_id)
        )


class TestConcurrentMailWorkers:
    def test_claim_when_another_worker_holds_a_row_takes_the_next_without_waiting(self, real_app):
        with real_app.app_context(), UnitOfWork():
            outbox = Outbox(OutboxRepository(), UnitOfWork())
            for to in ("a@x.example", "b@x.example"):
                outbox.queue(to, compose("Hello", ["Body."]), kind="test")
        now, lease = utcnow(), timedelta(minutes=1)

        with real_app.app_context():  # worker one: its claim's transaction still open
            (first,) = OutboxRepository().claim_due(now, 1, lease)
            with real_app.app_context():  # worker two, on a connection of its own
                # Waiting for worker one's lock would hit this and fail the test.
                db.session.execute(text("SET LOCAL lock_timeout = '2s'"))
                (second,) = OutboxRepository().claim_due(now, 1, lease)
                db.session.commit()
            db.session.commit()

        assert (first.recipient, second.recipient) == ("a@x.example", "b@x.example")
