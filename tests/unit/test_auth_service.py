"""AuthService rules, with every collaborator mocked (no app, no database)."""

from __future__ import annotations

import unittest
from datetime import UTC, datetime, timedelta
from unittest import mock

from freezegun import freeze_time

from myapp.auth.account import digest
from myapp.auth.mfa import CodeRequired, Proof, SecondFactors, WrongCode
from myapp.auth.models import AuthSession, MfaChallenge
from myapp.auth.passkeys import Passkeys, PasskeyUse
from myapp.auth.repository import MfaRepository, SessionRepository
from myapp.auth.service import (
    AuthService,
    ClientInfo,
    InvalidCode,
    InvalidCredentials,
    InvalidMfaToken,
    MfaRequired,
    MfaSettings,
    PasskeySignInFailed,
    RefreshTokenReused,
    RefreshTokenSpent,
    SessionExpired,
    challenge_binding,
)
from myapp.auth.tokens import TokenPair, TokenService
from myapp.database.unit_of_work import UnitOfWork
from myapp.errors import NotFound, TooManyRequests
from myapp.passwords import PasswordHasher
from myapp.ratelimit import Budget
from myapp.users.models import User
from myapp.users.repository import UserRepository
from myapp.users.service import WrongPassword
from tests.support.fakes import FakeSession

TOKENS = TokenPair(access_token="a", refresh_token="r", expires_in=900)
LIFETIME = timedelta(days=7)  # idle
ABSOLUTE = timedelta(days=30)
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class AuthServiceTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.users = mock.create_autospec(UserRepository, instance=True)
        self.sessions = mock.create_autospec(SessionRepository, instance=True)
        self.passwords = mock.create_autospec(PasswordHasher, instance=True)
        self.tokens = mock.create_autospec(TokenService, instance=True)
        self.tokens.issue.return_value = TOKENS
        self.db = FakeSession()
        self.uow = UnitOfWork(self.db)
        self.failed_logins = mock.create_autospec(Budget, instance=True)
        self.sessions.create_if_unchanged.return_value = True
        self.factors = mock.create_autospec(SecondFactors, instance=True)
        self.factors.repository = mock.create_autospec(MfaRepository, instance=True)
        self.factors.passkeys = mock.create_autospec(Passkeys, instance=True)
        self.service = AuthService(
            self.users,
            self.sessions,
            self.passwords,
            self.tokens,
            self.uow,
            self.failed_logins,
            self.factors,
            session_lifetime=LIFETIME,
            session_absolute_lifetime=ABSOLUTE,
            mfa=MfaSettings(token_lifetime=timedelta(minutes=5), max_attempts=5),
        )
        self.user = User(
            id=7,
            email="ada@example.com",
            username="ada",
            password_hash="$h",
            is_active=True,
            token_version=0,
        )
        self.enterContext(freeze_time(NOW))


class TestAuthenticate(AuthServiceTestCase):
    """The credential check inside login (it is not a use case of its own)."""

    def setUp(self) -> None:
        super().setUp()
        self.users.find_for_login.return_value = self.user
        self.passwords.verify.return_value = True
        self.passwords.needs_rehash.return_value = False

    def test_login_when_email_and_password_match_checks_that_user(self):
        result = self.service.login("pw", email="ada@example.com")

        self.assertIs(result, TOKENS)
        self.users.find_for_login.assert_called_once_with(email="ada@example.com")
        self.passwords.verify.assert_called_once_with("$h", "pw")

    def test_login_when_username_given_looks_up_username(self):
        self.service.login("pw", username="ada")

        self.users.find_for_login.assert_called_once_with(username="ada")

    def test_login_when_user_unknown_verifies_dummy_and_raises(self):
        self.users.find_for_login.return_value = None

        with self.assertRaises(InvalidCredentials) as caught:
            self.service.login("pw", email="nobody@example.com")

        self.assertEqual(caught.exception.detail, "Invalid credentials")
        self.passwords.verify_dummy.assert_called_once_with("pw")

    def test_login_when_password_wrong_raises_invalid_credentials(self):
        self.passwords.verify.return_value = False

        with self.assertRaises(InvalidCredentials):
            self.service.login("wrong", email="ada@example.com")

    def test_login_when_account_inactive_still_verifies_then_raises(self):
        self.user.is_active = False

        with self.assertRaises(InvalidCredentials):
            self.service.login("pw", email="ada@example.com")

        # The hash is checked anyway: an inactive account costs what any other does.
        self.passwords.verify.assert_called_once_with("$h", "pw")

    def test_login_when_no_identifier_raises_invalid_credentials(self):
        with self.assertRaises(InvalidCredentials):
            self.service.login("pw")

    def test_login_when_hash_parameters_outdated_rehashes_and_saves_in_the_same_commit(self):
        self.passwords.needs_rehash.return_value = True
        self.passwords.hash.return_value = "$new"

        self.service.login("pw", email="ada@example.com")

        self.assertEqual(self.user.password_hash, "$new")
        self.users.save.assert_called_once_with(self.user)
        self.assertEqual(self.db.commits, 1)

    def test_login_when_hash_current_saves_nothing(self):
        self.service.login("pw", email="ada@example.com")

        self.users.save.assert_not_called()


class TestLogin(AuthServiceTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.users.find_for_login.return_value = self.user
        self.passwords.verify.return_value = True
        self.passwords.needs_rehash.return_value = False

    def test_login_when_credentials_match_creates_session_and_issues_fresh_tokens(self):
        result = self.service.login(
            "pw", email="ada@example.com", client=ClientInfo("curl/8", "203.0.113.9")
        )

        created, checked_hash, checked_version = self.sessions.create_if_unchanged.call_args.args
        self.assertIs(result, TOKENS)
        self.assertEqual(
            (created.user_id, created.user_agent, created.ip, created.expires_at),
            (7, "curl/8", "203.0.113.9", NOW + LIFETIME),
        )
        self.assertEqual(len(created.refresh_jti), 36)
        # Stored only if the credential is still the one the password was checked against.
        self.assertEqual((checked_hash, checked_version), ("$h", 0))
        self.tokens.issue.assert_called_once_with(self.user, created, fresh=True)
        self.assertEqual((self.db.commits, self.db.rollbacks), (1, 0))

    def test_login_when_credential_changed_during_the_check_refuses_and_stores_nothing(self):
        self.sessions.create_if_unchanged.return_value = False

        with self.assertRaises(InvalidCredentials):
            self.service.login("pw", email="ada@example.com")

        self.tokens.issue.assert_not_called()
        self.assertEqual((self.db.commits, self.db.rollbacks), (0, 1))

    def test_login_when_credentials_rejected_creates_no_session(self):
        self.passwords.verify.return_value = False

        with self.assertRaises(InvalidCredentials):
            self.service.login("bad", email="ada@example.com")

        self.sessions.create_if_unchanged.assert_not_called()
        self.tokens.issue.assert_not_called()
        # Refused before its unit of work opened: the password check holds no transaction.
        self.assertEqual((self.db.commits, self.db.rollbacks), (0, 0))

    def test_login_when_tokens_cannot_be_issued_rolls_the_session_back(self):
        self.tokens.issue.side_effect = RuntimeError("signing failed")

        with self.assertRaises(RuntimeError):
            self.service.login("pw", email="ada@example.com")

        self.sessions.create_if_unchanged.assert_called_once()
        self.assertEqual((self.db.commits, self.db.rollbacks), (0, 1))


class TestFailedLoginBudget(AuthServiceTestCase):
    """Each account has a budget of wrong passwords: spent before every check,
    given back when the password is right."""

    def setUp(self) -> None:
        super().setUp()
        self.users.find_for_login.return_value = self.user
        self.passwords.needs_rehash.return_value = False

    def test_login_when_password_right_spends_then_refunds_the_accounts_budget(self):
        self.passwords.verify.return_value = True

        self.service.login("pw", username="ada")

        self.failed_logins.spend.assert_called_once_with("user:7")
        self.failed_logins.refund.assert_called_once_with("user:7")

    def test_login_when_password_wrong_keeps_the_use_spent(self):
        self.passwords.verify.return_value = False

        with self.assertRaises(InvalidCredentials):
            self.service.login("wrong", email="ada@example.com")

        self.failed_logins.spend.assert_called_once_with("user:7")
        self.failed_logins.refund.assert_not_called()

    def test_login_when_budget_spent_raises_429_before_any_password_check(self):
        self.failed_logins.spend.side_effect = TooManyRequests("no more", retry_after=60)

        with self.assertRaises(TooManyRequests) as caught, self.assertLogs("myapp.audit") as logs:
            self.service.login("pw", email="ada@example.com")

        self.assertEqual(caught.exception.headers, {"Retry-After": "60"})
        self.passwords.verify.assert_not_called()
        self.sessions.create_if_unchanged.assert_not_called()
        (record,) = logs.records
        self.assertEqual((record.getMessage(), record.user_id), ("login.throttled", 7))

    def test_login_when_unknown_identifiers_budget_spent_audits_no_user(self):
        self.users.find_for_login.return_value = None
        self.failed_logins.spend.side_effect = TooManyRequests("no more", retry_after=60)

        with self.assertRaises(TooManyRequests), self.assertLogs("myapp.audit") as logs:
            self.service.login("pw", email="nobody@example.com")

        (record,) = logs.records
        self.assertEqual((record.getMessage(), record.user_id), ("login.throttled", None))

    def test_login_when_account_unknown_spends_a_budget_of_the_identifier(self):
        self.users.find_for_login.return_value = None

        with self.assertRaises(InvalidCredentials):
            self.service.login("pw", email="nobody@example.com")

        # A budget of its own: a 429 for it tells no more than one for a real account.
        self.failed_logins.spend.assert_called_once_with("unknown:nobody@example.com")
        self.passwords.verify_dummy.assert_called_once_with("pw")


class TestRefresh(AuthServiceTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.auth_session = AuthSession(
            id="s1", user_id=7, refresh_jti="jti-1", created_at=NOW - timedelta(days=1)
        )
        self.sessions.get.return_value = self.auth_session
        self.sessions.rotate.return_value = True

    def test_refresh_when_token_current_rotates_and_issues_non_fresh_tokens(self):
        result = self.service.refresh(self.user, "s1", "jti-1")

        session_id, old, new, now, expires = self.sessions.rotate.call_args.args
        self.assertIs(result, TOKENS)
        self.assertEqual((session_id, old, now, expires), ("s1", "jti-1", NOW, NOW + LIFETIME))
        self.assertNotEqual(new, "jti-1")
        self.tokens.issue.assert_called_once_with(self.user, self.auth_session, fresh=False)
        self.sessions.revoke.assert_not_called()
        self.assertEqual(self.db.commits, 1)

    def test_refresh_when_token_already_spent_revokes_family_and_raises(self):
        with self.assertRaises(RefreshTokenReused):
            self.service.refresh(self.user, "s1", "jti-0")

        self.sessions.revoke.assert_called_once_with("s1", NOW)
        self.sessions.rotate.assert_not_called()
        self.tokens.issue.assert_not_called()
        # The revocation is the outcome: committed, although the caller gets a 401.
        self.assertEqual((self.db.commits, self.db.rollbacks), (1, 0))

    def test_refresh_when_concurrent_refresh_won_raises_without_revoking(self):
        self.sessions.rotate.return_value = False

        with self.assertRaises(RefreshTokenSpent):
            self.service.refresh(self.user, "s1", "jti-1")

        self.sessions.revoke.assert_not_called()
        self.tokens.issue.assert_not_called()

    def test_refresh_when_near_the_absolute_deadline_extends_only_up_to_it(self):
        self.auth_session.created_at = NOW - ABSOLUTE + timedelta(days=2)

        self.service.refresh(self.user, "s1", "jti-1")

        expires_at = self.sessions.rotate.call_args.args[4]
        self.assertEqual(expires_at, self.auth_session.created_at + ABSOLUTE)

    def test_refresh_when_past_the_absolute_deadline_raises_and_rotates_nothing(self):
        self.auth_session.created_at = NOW - ABSOLUTE

        with self.assertRaises(SessionExpired):
            self.service.refresh(self.user, "s1", "jti-1")

        self.sessions.rotate.assert_not_called()
        self.tokens.issue.assert_not_called()


class TestLogoutAndSessions(AuthServiceTestCase):
    def test_logout_when_called_revokes_the_session(self):
        self.service.logout(self.user, "s1")

        self.sessions.revoke.assert_called_once_with("s1", NOW)
        self.assertEqual(self.db.commits, 1)

    def test_logout_everywhere_when_called_bumps_version_and_revokes_all(self):
        self.service.logout_everywhere(self.user)

        self.assertEqual(self.user.token_version, 1)
        self.sessions.revoke_all.assert_called_once_with(7, NOW)
        self.users.save.assert_called_once_with(self.user)
        self.assertEqual(self.db.commits, 1)

    def test_logout_everywhere_when_version_already_bumped_increments_it(self):
        self.user.token_version = 4

        self.service.logout_everywhere(self.user)

        self.assertEqual(self.user.token_version, 5)

    def test_list_sessions_when_called_returns_active_sessions(self):
        self.sessions.list_active.return_value = ["s"]

        self.assertEqual(self.service.list_sessions(self.user), ["s"])
        self.sessions.list_active.assert_called_once_with(7, NOW)

    def test_revoke_session_when_owned_revokes_it(self):
        self.sessions.get_active_for_user.return_value = AuthSession(id="s2", user_id=7)

        self.service.revoke_session(self.user, "s2")

        self.sessions.get_active_for_user.assert_called_once_with("s2", 7, NOW)
        self.sessions.revoke.assert_called_once_with("s2", NOW)
        self.assertEqual(self.db.commits, 1)

    def test_revoke_session_when_not_owned_raises_not_found_and_revokes_nothing(self):
        self.sessions.get_active_for_user.return_value = None

        with self.assertRaises(NotFound):
            self.service.revoke_session(self.user, "s2")

        self.sessions.revoke.assert_not_called()


class TestTwoStepLogin(AuthServiceTestCase):
    """Login with a second factor: the password step stores a challenge, the code
    step (``complete_login``) spends it and starts the session."""

    def setUp(self) -> None:
        super().setUp()
        self.user.is_mfa_enabled = True
        self.users.find_for_login.return_value = self.user
        self.users.get.return_value = self.user
        self.passwords.verify.return_value = True
        self.passwords.needs_rehash.return_value = False
        self.factors.methods.return_value = ["totp", "recovery_code"]
        self.factors.check.return_value = "totp"
        self.challenges = self.factors.repository
        self.challenges.consume_challenge.return_value = True
        self.challenges.get_challenge.return_value = self.challenge()

    def challenge(self, **changes) -> MfaChallenge:
        """The stored second step of user 7's login, alive unless ``changes`` say."""
        fields = {
            "id": 3,
            "user_id": 7,
            "token_hash": digest("tok"),
            "binding": digest(challenge_binding(self.user)),
            "expires_at": NOW + timedelta(minutes=5),
            "failed_attempts": 0,
            "used_at": None,
        }
        return MfaChallenge(**{**fields, **changes})

    def test_login_when_mfa_on_stores_a_bound_challenge_and_issues_no_token(self):
        result = self.service.login("pw", email="ada@example.com")

        self.assertIsInstance(result, MfaRequired)
        self.assertEqual(result.methods, ["totp", "recovery_code"])
        (stored,), _ = self.challenges.add_challenge.call_args
        self.assertEqual(stored.token_hash, digest(result.mfa_token))
        self.assertEqual(stored.binding, digest("$h\n0"))
        self.assertEqual(stored.expires_at, NOW + timedelta(minutes=5))
        self.sessions.create_if_unchanged.assert_not_called()
        self.tokens.issue.assert_not_called()
        self.assertEqual(self.db.commits, 1)

    def test_complete_when_code_right_spends_the_challenge_and_issues_fresh_tokens(self):
        tokens = self.service.complete_login("tok", Proof(code="123456"))

        self.assertIs(tokens, TOKENS)
        self.challenges.consume_challenge.assert_called_once_with(3, NOW, 5)
        self.sessions.create_if_unchanged.assert_called_once()
        self.assertTrue(self.tokens.issue.call_args.kwargs["fresh"])
        self.challenges.count_failure.assert_not_called()
        self.assertEqual(self.db.commits, 1)

    def test_complete_when_code_wrong_commits_the_failure_count_then_raises(self):
        self.factors.check.return_value = None

        with self.assertRaises(InvalidCode):
            self.service.complete_login("tok", Proof(code="123456"))

        self.challenges.count_failure.assert_called_once_with(3)
        self.challenges.consume_challenge.assert_not_called()
        self.assertEqual((self.db.commits, self.db.rollbacks), (1, 0))

    def test_complete_when_a_concurrent_request_spent_the_challenge_rolls_back(self):
        self.challenges.consume_challenge.return_value = False

        with self.assertRaises(InvalidMfaToken):
            self.service.complete_login("tok", Proof(code="123456"))

        self.tokens.issue.assert_not_called()
        self.assertEqual((self.db.commits, self.db.rollbacks), (0, 1))

    def test_complete_when_token_unknown_raises_without_checking_a_code(self):
        self.challenges.get_challenge.return_value = None

        with self.assertRaises(InvalidMfaToken):
            self.service.complete_login("tok", Proof(code="123456"))
        self.factors.check.assert_not_called()

    def test_complete_when_user_deleted_meanwhile_raises_without_checking_a_code(self):
        self.users.get.return_value = None

        with self.assertRaises(InvalidMfaToken):
            self.service.complete_login("tok", Proof(code="123456"))
        self.factors.check.assert_not_called()

    def test_complete_when_challenge_dead_raises_without_checking_a_code(self):
        cases = {
            "used": {"used_at": NOW},
            "expired": {"expires_at": NOW},
            "five wrong codes": {"failed_attempts": 5},
        }
        for name, change in cases.items():
            with self.subTest(name):
                self.challenges.get_challenge.return_value = self.challenge(**change)

                with self.assertRaises(InvalidMfaToken):
                    self.service.complete_login("tok", Proof(code="123456"))
                self.factors.check.assert_not_called()

    def test_complete_when_password_changed_since_the_first_step_raises(self):
        self.user.password_hash = "$changed"

        with self.assertRaises(InvalidMfaToken):
            self.service.complete_login("tok", Proof(code="123456"))
        self.factors.check.assert_not_called()

    def test_complete_when_user_deactivated_since_the_first_step_raises(self):
        self.user.is_active = False

        with self.assertRaises(InvalidMfaToken):
            self.service.complete_login("tok", Proof(code="123456"))

    def test_login_when_hash_outdated_rehashes_and_binds_the_challenge_to_the_new_hash(self):
        self.passwords.needs_rehash.return_value = True
        self.passwords.hash.return_value = "$new"

        self.service.login("pw", email="ada@example.com")

        (stored,), _ = self.challenges.add_challenge.call_args
        self.assertEqual(self.user.password_hash, "$new")
        self.users.save.assert_called_once_with(self.user)
        self.assertEqual(stored.binding, digest("$new\n0"))
        self.assertEqual(self.db.commits, 1)

    def test_complete_when_credential_changed_at_the_last_moment_stores_nothing(self):
        self.sessions.create_if_unchanged.return_value = False

        with self.assertRaises(InvalidMfaToken):
            self.service.complete_login("tok", Proof(code="123456"))

        self.tokens.issue.assert_not_called()
        self.assertEqual((self.db.commits, self.db.rollbacks), (0, 1))


class TestReauthenticate(AuthServiceTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.passwords.verify.return_value = True
        self.tokens.issue_access.return_value = "fresh"

    def test_reauthenticate_when_password_right_issues_a_fresh_token_of_the_session(self):
        result = self.service.reauthenticate(self.user, "s1", "pw", Proof())

        self.assertEqual(result, "fresh")
        self.tokens.issue_access.assert_called_once_with(self.user, "s1", fresh=True)
        self.assertEqual(self.db.commits, 0)  # nothing to store

    def test_reauthenticate_when_password_wrong_raises_without_a_token(self):
        self.passwords.verify.return_value = False

        with self.assertRaises(WrongPassword):
            self.service.reauthenticate(self.user, "s1", "bad", Proof())
        self.tokens.issue_access.assert_not_called()

    def test_reauthenticate_when_mfa_on_and_no_code_raises(self):
        self.user.is_mfa_enabled = True

        with self.assertRaises(CodeRequired):
            self.service.reauthenticate(self.user, "s1", "pw", Proof())
        self.factors.check.assert_not_called()

    def test_reauthenticate_when_mfa_on_and_code_wrong_raises_and_rolls_back(self):
        self.user.is_mfa_enabled = True
        self.factors.check.return_value = None

        with self.assertRaises(WrongCode):
            self.service.reauthenticate(self.user, "s1", "pw", Proof(code="123456"))
        self.tokens.issue_access.assert_not_called()
        self.assertEqual(self.db.rollbacks, 1)

    def test_reauthenticate_when_mfa_on_and_code_right_commits_its_use(self):
        self.user.is_mfa_enabled = True
        self.factors.check.return_value = "totp"

        self.service.reauthenticate(self.user, "s1", "pw", Proof(code="123456"))

        self.assertEqual(self.db.commits, 1)
        self.tokens.issue_access.assert_called_once_with(self.user, "s1", fresh=True)

    def test_reauthenticate_when_passkey_given_checks_it_for_this_ceremony_not_the_password(self):
        answer = mock.sentinel.answer
        self.factors.check.return_value = "passkey"

        result = self.service.reauthenticate(self.user, "s1", None, Proof(passkey=answer))

        self.assertEqual(result, "fresh")
        self.passwords.verify.assert_not_called()
        (user, proof, _uow, ceremony), _ = self.factors.check.call_args
        self.assertEqual((user, proof.passkey, ceremony), (self.user, answer, "reauthentication"))
        self.assertEqual(self.db.commits, 1)  # the challenge and the counter are recorded

    def test_reauthenticate_when_passkey_refused_commits_the_spent_challenge_then_raises(self):
        self.factors.check.return_value = None

        with self.assertRaises(WrongCode):
            self.service.reauthenticate(self.user, "s1", None, Proof(passkey=mock.sentinel.a))

        self.assertEqual((self.db.commits, self.db.rollbacks), (1, 0))
        self.tokens.issue_access.assert_not_called()


class TestPasskeySignIn(AuthServiceTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.passkeys = self.factors.passkeys
        self.passkeys.verify.return_value = PasskeyUse(mock.Mock(), self.user.id)
        self.users.get.return_value = self.user

    def test_sign_in_when_passkey_verifies_starts_a_session_with_fresh_tokens(self):
        tokens = self.service.login_with_passkey(mock.sentinel.answer)

        self.assertIs(tokens, TOKENS)
        self.passkeys.verify.assert_called_once_with(mock.sentinel.answer, "login")
        (session, password_hash, version), _ = self.sessions.create_if_unchanged.call_args
        self.assertEqual((session.user_id, password_hash, version), (7, "$h", 0))
        self.assertTrue(self.tokens.issue.call_args.kwargs["fresh"])
        self.assertEqual(self.db.commits, 1)

    def test_sign_in_when_passkey_refused_commits_the_spent_challenge_and_issues_nothing(self):
        self.passkeys.verify.return_value = None

        with self.assertRaises(PasskeySignInFailed):
            self.service.login_with_passkey(mock.sentinel.answer)

        self.sessions.create_if_unchanged.assert_not_called()
        self.assertEqual((self.db.commits, self.db.rollbacks), (1, 0))

    def test_sign_in_when_account_deactivated_starts_no_session(self):
        self.user.is_active = False

        with self.assertRaises(PasskeySignInFailed):
            self.service.login_with_passkey(mock.sentinel.answer)

        self.sessions.create_if_unchanged.assert_not_called()
        self.tokens.issue.assert_not_called()
