"""A login whose password check passed just before a credential change must not
leave a live session after it (the interleaving made deterministic: the change
runs, and commits, while the login is checking the password)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from myapp.auth.account import AccountService
from myapp.auth.models import AuthSession
from myapp.auth.service import AuthService, InvalidCredentials
from myapp.extensions import db
from myapp.passwords import PasswordHasher
from myapp.users.service import UserService
from tests.conftest import token_from
from tests.factories import DEFAULT_PASSWORD

NEW_PASSWORD = "a brand new passphrase"


def live_sessions() -> int:
    return db.session.scalar(
        select(func.count()).select_from(AuthSession).where(AuthSession.revoked_at.is_(None))
    )


@pytest.fixture
def during_password_check(mocker):
    """Run ``change()`` once, right after the login's password check passes."""
    verify = PasswordHasher.verify
    pending = []

    def verify_then_change(self, password_hash, password):
        matched = verify(self, password_hash, password)
        while pending:
            pending.pop()()
        return matched

    mocker.patch.object(PasswordHasher, "verify", verify_then_change)
    return pending.append


class TestLoginRacingACredentialChange:
    def test_login_when_password_changed_during_its_check_is_refused(
        self, app, user, during_password_check
    ):
        during_password_check(
            lambda: UserService.from_app().change_password(
                user, DEFAULT_PASSWORD, NEW_PASSWORD, keep_session="none"
            )
        )

        with pytest.raises(InvalidCredentials):
            AuthService.from_app().login(DEFAULT_PASSWORD, email=user.email)

        assert live_sessions() == 0

    def test_login_when_password_reset_during_its_check_is_refused(
        self, app, client, user, outbox, during_password_check
    ):
        client.post("/api/v1/auth/password-reset", json={"email": user.email})
        token = token_from(outbox[-1])
        during_password_check(lambda: AccountService.from_app().reset_password(token, NEW_PASSWORD))

        with pytest.raises(InvalidCredentials):
            AuthService.from_app().login(DEFAULT_PASSWORD, email=user.email)

        assert live_sessions() == 0

    def test_login_when_nothing_changed_during_its_check_starts_a_session(
        self, app, user, during_password_check
    ):
        AuthService.from_app().login(DEFAULT_PASSWORD, email=user.email)

        assert live_sessions() == 1
