"""AccountService rules (password change/reset, verification), collaborators mocked."""

from __future__ import annotations

import unittest
from datetime import UTC, datetime, timedelta
from unittest import mock

from freezegun import freeze_time

from myapp.auth.account import (
    AccountService,
    AccountSettings,
    AlreadyVerified,
    EmailTaken,
    InvalidActionToken,
    RegistrationRace,
    UsernameTaken,
    digest,
)
from myapp.auth.models import ActionToken, TokenPurpose
from myapp.auth.repository import ActionTokenRepository, SessionRepository
from myapp.database.unit_of_work import UnitOfWork
from myapp.outbox.service import Outbox
from myapp.passwords import PasswordHasher
from myapp.users.models import User
from myapp.users.repository import DuplicateUserError, UserRepository
from tests.support.fakes import FakeSession

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RESET_BINDING = "$old\nada@example.com"  # the password hash and email it was sent to
SETTINGS = AccountSettings(
    base_url="https://accounts.example.com",
    reset_lifetime=timedelta(minutes=30),
    verification_lifetime=timedelta(hours=24),
    email_change_lifetime=timedelta(hours=24),
)


class AccountServiceTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.users = mock.create_autospec(UserRepository, instance=True)
        self.sessions = mock.create_autospec(SessionRepository, instance=True)
        self.tokens = mock.create_autospec(ActionTokenRepository, instance=True)
        self.passwords = mock.create_autospec(PasswordHasher, instance=True)
        self.outbox = mock.create_autospec(Outbox, instance=True)
        self.db = FakeSession()
        self.uow = UnitOfWork(self.db)
        self.service = AccountService(
            self.users, self.sessions, self.tokens, self.passwords, self.outbox, SETTINGS, self.uow
        )
        self.user = User(
            id=7,
            email="ada@example.com",
            username="ada",
            password_hash="$old",
            is_active=True,
            is_verified=False,
            token_version=0,
        )
        self.users.get.return_value = self.user
        self.users.get_by_email.return_value = self.user
        self.passwords.hash.return_value = "$new"
        self.tokens.consume.return_value = True
        self.enterContext(freeze_time(NOW))

    def sent_token(self) -> str:
        """The raw token in the link of the one email queued."""
        (to, message), _ = self.outbox.queue.call_args
        return message.text.split("token=")[1].split()[0]

    def stored(self, kind: TokenPurpose, bound_to: str, **changes) -> ActionToken:
        """Make the repository hold the token "raw" of this kind, with ``changes``."""
        row = ActionToken(
            id=1,
            user_id=7,
            purpose=kind,
            token_hash=digest("raw"),
            binding=digest(bound_to),
            created_at=NOW,
            expires_at=NOW + timedelta(minutes=30),
            used_at=None,
        )
        for key, value in changes.items():
            setattr(row, key, value)
        self.tokens.get_by_hash.return_value = row
        return row


class TestRegister(AccountServiceTestCase):
    """Inputs arrive normalised (the schema's job: tests/unit/test_schemas.py)."""

    def setUp(self) -> None:
        super().setUp()
        self.users.find_conflicts.return_value = (False, False)
        self.users.add.side_effect = lambda user: user
        self.passwords.hash.return_value = "$argon2id$hash"

    def test_register_when_new_stores_user_with_hash_and_emails_verification(self):
        user = self.service.register("ada@example.com", "ada", "a long password!")

        self.users.find_conflicts.assert_called_once_with("ada@example.com", "ada")
        self.passwords.hash.assert_called_once_with("a long password!")
        self.users.add.assert_called_once_with(user)
        self.assertEqual(
            (user.email, user.username, user.password_hash, user.is_admin, user.is_verified),
            ("ada@example.com", "ada", "$argon2id$hash", False, False),
        )
        (row,), _ = self.tokens.add.call_args
        self.assertEqual(row.purpose, TokenPurpose.EMAIL_VERIFICATION)
        self.outbox.queue.assert_called_once()
        self.assertEqual(self.db.commits, 1)

    def test_register_when_vouched_for_creates_verified_admin_without_email(self):
        user = self.service.register(
            "root@example.com", "root", "a long password!", is_admin=True, is_verified=True
        )

        self.assertEqual((user.is_admin, user.is_verified), (True, True))
        self.tokens.add.assert_not_called()
        self.outbox.queue.assert_not_called()
        self.assertEqual(self.db.commits, 1)

    def test_register_when_email_taken_raises_conflict_and_adds_nothing(self):
        self.users.find_conflicts.return_value = (True, False)

        with self.assertRaises(EmailTaken) as caught:
            self.service.register("ada@example.com", "ada", "a long password!")

        self.assertEqual(caught.exception.detail, "An account with this email already exists.")
        self.users.add.assert_not_called()
        self.passwords.hash.assert_not_called()
        self.outbox.queue.assert_not_called()

    def test_register_when_username_taken_raises_conflict_and_adds_nothing(self):
        self.users.find_conflicts.return_value = (False, True)

        with self.assertRaises(UsernameTaken) as caught:
            self.service.register("ada@example.com", "ada", "a long password!")

        self.assertEqual(caught.exception.detail, "This username is taken.")
        self.users.add.assert_not_called()

    def test_register_when_insert_loses_race_raises_conflict_and_rolls_back(self):
        self.users.add.side_effect = DuplicateUserError("unique violation")

        with self.assertRaises(RegistrationRace) as caught:
            self.service.register("ada@example.com", "ada", "a long password!")

        self.assertEqual(
            caught.exception.detail, "An account with this email or username already exists."
        )
        self.outbox.queue.assert_not_called()
        self.assertEqual((self.db.commits, self.db.rollbacks), (0, 1))


class TestRequestPasswordReset(AccountServiceTestCase):
    def test_request_reset_when_any_address_only_queues_a_message_to_prepare(self):
        for known in (True, False):
            with self.subTest(known=known):
                self.outbox.reset_mock()
                self.users.get_by_email.return_value = self.user if known else None

                self.service.request_password_reset("ada@example.com")

                # The same work either way: no lookup, no token, one queued row.
                self.outbox.queue_to_prepare.assert_called_once_with(
                    "ada@example.com", kind="password_reset"
                )
                self.users.get_by_email.assert_not_called()
                self.tokens.add.assert_not_called()
        self.assertEqual(self.db.commits, 2)


class TestPreparePasswordReset(AccountServiceTestCase):
    """What the mail worker writes for a queued reset request."""

    def test_prepare_when_account_active_stores_hashed_token_and_writes_link(self):
        with self.uow:  # a step of the worker's use case
            message = self.service.prepare_password_reset("ada@example.com")

        (row,), _ = self.tokens.add.call_args
        token = message.text.split("token=")[1].split()[0]
        self.users.get_by_email.assert_called_once_with("ada@example.com")
        self.assertEqual(message.subject, "Reset your password")
        self.assertIn(f"https://accounts.example.com/account/reset?token={token}", message.text)
        self.assertIn(
            f'href="https://accounts.example.com/account/reset?token={token}"', message.html
        )
        self.assertGreaterEqual(len(token), 43)  # 32 random bytes, base64url
        self.assertEqual(row.token_hash, digest(token))
        self.assertNotIn(token, (row.token_hash, row.binding))
        self.assertEqual(
            (row.purpose, row.binding),
            (TokenPurpose.PASSWORD_RESET, digest("$old\nada@example.com")),
        )
        self.assertEqual(row.expires_at, NOW + timedelta(minutes=30))

    def test_prepare_when_account_unknown_writes_nothing(self):
        self.users.get_by_email.return_value = None

        self.assertIsNone(self.service.prepare_password_reset("nobody@example.com"))
        self.tokens.add.assert_not_called()

    def test_prepare_when_account_inactive_writes_nothing(self):
        self.user.is_active = False

        self.assertIsNone(self.service.prepare_password_reset("ada@example.com"))
        self.tokens.add.assert_not_called()


class TestResetPassword(AccountServiceTestCase):
    def test_reset_when_token_valid_sets_password_and_ends_every_session(self):
        row = self.stored(TokenPurpose.PASSWORD_RESET, RESET_BINDING)

        self.service.reset_password("raw", "new password!")

        self.tokens.get_by_hash.assert_called_once_with(digest("raw"))
        self.tokens.consume.assert_called_once_with(row.id, NOW)
        self.assertEqual((self.user.password_hash, self.user.token_version), ("$new", 1))
        self.sessions.revoke_all.assert_called_once_with(7, NOW)
        self.users.save.assert_called_once_with(self.user)
        self.assertEqual(self.db.commits, 1)
        (to, notice), queued = self.outbox.queue.call_args
        self.assertEqual((to, queued), ("ada@example.com", {"kind": "password_reset_completed"}))
        self.assertNotIn("token", notice.text + notice.html)  # a notice carries no link

    def test_reset_when_token_unknown_raises(self):
        self.tokens.get_by_hash.return_value = None

        with self.assertRaises(InvalidActionToken):
            self.service.reset_password("raw", "new password!")

        self.users.save.assert_not_called()

    def test_reset_when_token_invalid_raises_and_changes_nothing(self):
        cases = {
            "used": {"used_at": NOW - timedelta(minutes=1)},
            "expired": {"expires_at": NOW},
            "other-purpose": {"purpose": TokenPurpose.EMAIL_VERIFICATION},
            "password-changed-since": {"binding": digest("$older\nada@example.com")},
            "email-changed-since": {"binding": digest("$old\nold@example.com")},
        }
        for name, changes in cases.items():
            with self.subTest(name):
                self.stored(TokenPurpose.PASSWORD_RESET, RESET_BINDING, **changes)

                with self.assertRaises(InvalidActionToken):
                    self.service.reset_password("raw", "new password!")

                self.tokens.consume.assert_not_called()
                self.assertEqual(self.user.password_hash, "$old")

    def test_reset_when_user_inactive_raises(self):
        self.stored(TokenPurpose.PASSWORD_RESET, RESET_BINDING)
        self.user.is_active = False

        with self.assertRaises(InvalidActionToken):
            self.service.reset_password("raw", "new password!")

    def test_reset_when_token_consumed_concurrently_raises(self):
        self.stored(TokenPurpose.PASSWORD_RESET, RESET_BINDING)
        self.tokens.consume.return_value = False

        with self.assertRaises(InvalidActionToken):
            self.service.reset_password("raw", "new password!")

        self.users.save.assert_not_called()


class TestEmailVerification(AccountServiceTestCase):
    def test_resend_verification_when_unverified_emails_link_bound_to_email(self):
        self.service.resend_verification(self.user)

        (row,), _ = self.tokens.add.call_args
        token = self.sent_token()
        self.assertEqual(row.purpose, TokenPurpose.EMAIL_VERIFICATION)
        self.assertEqual(row.binding, digest("ada@example.com"))
        self.assertEqual(row.expires_at, NOW + timedelta(hours=24))
        self.assertEqual(row.token_hash, digest(token))
        self.assertEqual(self.db.commits, 1)

    def test_verify_email_when_token_valid_marks_user_verified(self):
        self.stored(TokenPurpose.EMAIL_VERIFICATION, "ada@example.com")
        self.users.save.side_effect = lambda user: user

        result = self.service.verify_email("raw")

        self.assertTrue(result.is_verified)
        self.users.save.assert_called_once_with(self.user)

    def test_verify_email_when_email_changed_since_raises(self):
        self.stored(TokenPurpose.EMAIL_VERIFICATION, "old@example.com")

        with self.assertRaises(InvalidActionToken):
            self.service.verify_email("raw")

        self.assertFalse(self.user.is_verified)

    def test_resend_when_unverified_sends_new_link(self):
        self.service.resend_verification(self.user)

        self.outbox.queue.assert_called_once()

    def test_resend_when_already_verified_raises_conflict(self):
        self.user.is_verified = True

        with self.assertRaises(AlreadyVerified):
            self.service.resend_verification(self.user)

        self.outbox.queue.assert_not_called()
