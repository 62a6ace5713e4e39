"""One use case, one transaction: the UnitOfWork itself, and for each service a
failure half-way through a use case that leaves nothing behind.

The failures are injected after an earlier step has already written to the
database (a flush), so only the use case's own rollback can undo it: the test
reads through the same session afterwards.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from myapp.auth.account import AccountService
from myapp.auth.mfa import MfaService, Proof
from myapp.auth.models import ActionToken, AuthSession, MfaChallenge, RecoveryCode, TotpCredential
from myapp.auth.repository import SessionRepository
from myapp.auth.service import AuthService
from myapp.auth.tokens import TokenService
from myapp.database.unit_of_work import UnitOfWork
from myapp.extensions import db
from myapp.users.models import User
from myapp.users.service import UserService
from tests.conftest import token_from
from tests.factories import DEFAULT_PASSWORD, AdminFactory, UserFactory
from tests.support.mfa import Authenticator

BOOM = RuntimeError("injected failure")


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


class TestUnitOfWork:
    def test_block_when_it_ends_commits_its_writes(self, app):
        with UnitOfWork():
            db.session.add(User(email="new@example.com", username="new", password_hash="x"))

        db.session.rollback()  # anything not committed would go now
        assert count(User) == 1

    def test_block_when_it_raises_rolls_back_what_it_flushed(self, app):
        with pytest.raises(RuntimeError), UnitOfWork():
            db.session.add(User(email="new@example.com", username="new", password_hash="x"))
            db.session.flush()
            raise BOOM

        assert count(User) == 0

    def test_on_commit_when_block_commits_runs_after_the_commit(self, app):
        seen = []
        with UnitOfWork() as uow:
            db.session.add(User(email="new@example.com", username="new", password_hash="x"))
            uow.on_commit(lambda: seen.append(db.session().in_transaction()))
            assert seen == []

        assert seen == [False]  # ran once, with the transaction already over

    def test_on_commit_when_block_raises_never_runs(self, app):
        seen = []
        with pytest.raises(RuntimeError), UnitOfWork() as uow:
            uow.on_commit(lambda: seen.append("sent"))
            raise BOOM

        with UnitOfWork():  # a later use case does not inherit the callback
            pass
        assert seen == []

    def test_use_case_when_started_inside_another_refuses(self, app):
        why = r"\Aa use case started inside another; call the inner steps instead\Z"
        with pytest.raises(RuntimeError, match=why), UnitOfWork(), UnitOfWork():
            pass

    def test_on_commit_when_outside_a_use_case_refuses_saying_why(self, app):
        # The developer who wrote the call reads this: what is wrong and what it would cause.
        why = r"\Aon_commit outside a use case: nothing would ever commit it\Z"
        with pytest.raises(RuntimeError, match=why):
            UnitOfWork().on_commit(lambda: None)


class TestFailureHalfWayLeavesNothing:
    """Per service: the last step fails after earlier ones wrote; nothing remains."""

    def test_account_register_when_verification_fails_leaves_no_user_and_sends_nothing(
        self, app, outbox, mocker
    ):
        mocker.patch.object(AccountService, "queue_verification", side_effect=BOOM)

        with pytest.raises(RuntimeError):
            AccountService.from_app().register("new@example.com", "new", "a long password!")

        assert (count(User), count(ActionToken), outbox) == (0, 0, [])

    def test_account_reset_when_revoking_fails_keeps_token_password_and_sessions(
        self, app, client, auth, user, outbox, mocker
    ):
        auth.login(email=user.email)
        client.post("/api/v1/auth/password-reset", json={"email": user.email})
        old_hash = user.password_hash
        mocker.patch.object(SessionRepository, "revoke_all", side_effect=BOOM)

        with pytest.raises(RuntimeError):
            AccountService.from_app().reset_password(token_from(outbox[0]), "a new long password")

        assert fresh(user).password_hash == old_hash
        assert fresh(user).token_version == 0
        assert db.session.scalar(select(ActionToken.used_at)) is None  # still usable
        assert db.session.scalar(select(AuthSession.revoked_at)) is None

    def test_auth_login_when_tokens_fail_leaves_no_session(self, app, user, mocker):
        mocker.patch.object(TokenService, "issue", side_effect=BOOM)

        with pytest.raises(RuntimeError):
            AuthService.from_app().login(DEFAULT_PASSWORD, email=user.email)

        assert count(AuthSession) == 0

    def test_user_deactivation_when_ending_sessions_fails_keeps_user_active(
        self, app, auth, user, mocker
    ):
        admin = AdminFactory()
        auth.login(email=user.email)
        mocker.patch.object(SessionRepository, "revoke_all", side_effect=BOOM)

        with pytest.raises(RuntimeError):
            UserService.from_app().admin_update(admin, user.id, {"is_active": False})

        assert (fresh(user).is_active, fresh(user).token_version) == (True, 0)
        assert db.session.scalar(select(AuthSession.revoked_at)) is None

    def test_user_email_change_when_link_fails_keeps_no_pending_address(self, app, outbox, mocker):
        ada = UserFactory(email="ada@example.com", username="ada", is_verified=True)
        mocker.patch.object(AccountService, "queue_email_change", side_effect=BOOM)

        with pytest.raises(RuntimeError):
            UserService.from_app().update_profile(
                ada, {"email": "new@example.com", "username": "lovelace"}
            )

        assert (fresh(ada).email, fresh(ada).pending_email) == ("ada@example.com", None)
        assert fresh(ada).username == "ada"  # the username change went back with it
        assert outbox == []

    def test_mfa_confirm_when_notice_fails_leaves_totp_pending_and_no_codes(
        self, app, client, user, auth_headers, mocker, clock
    ):
        secret = client.post("/api/v1/auth/mfa/totp/setup", headers=auth_headers).get_json()[
            "secret"
        ]
        mocker.patch.object(MfaService, "_tell", side_effect=BOOM)

        with pytest.raises(RuntimeError):
            MfaService.from_app().confirm_totp(fresh(user), Authenticator(secret).code())

        assert fresh(user).is_mfa_enabled is False
        assert db.session.get(TotpCredential, user.id).confirmed_at is None
        assert count(RecoveryCode) == 0

    def test_mfa_second_step_when_tokens_fail_keeps_the_challenge_and_the_code(
        self, app, auth, user, enrolled, mocker
    ):
        token = auth.mfa_token_for(user)
        mocker.patch.object(TokenService, "issue", side_effect=BOOM)

        with pytest.raises(RuntimeError):
            AuthService.from_app().complete_login(
                token, Proof(recovery_code=enrolled.recovery_codes[0])
            )

        assert db.session.scalar(select(MfaChallenge.used_at)) is None  # still usable
        assert count(AuthSession) == 1  # the enrolling session only
        assert (
            db.session.scalar(
                select(func.count()).select_from(RecoveryCode).where(RecoveryCode.used_at.is_(None))
            )
            == 10
        )
