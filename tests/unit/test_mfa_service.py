"""Second factors (SecondFactors) and their use cases (MfaService), collaborators
mocked; codes and encryption are real (pure functions, a real key)."""

from __future__ import annotations

import unittest
from datetime import UTC, datetime
from unittest import mock

from cryptography.fernet import Fernet
from freezegun import freeze_time

from myapp.auth.factors import (
    normalise_recovery_code,
    recovery_code_hash,
    time_step,
    totp_code,
)
from myapp.auth.mfa import (
    MfaService,
    NoPendingEnrolment,
    NoSecondFactor,
    Proof,
    SecondFactors,
    TotpAlreadyOn,
    TotpOff,
    WrongCode,
    WrongEnrolmentCode,
)
from myapp.auth.models import TotpCredential
from myapp.auth.passkeys import Passkeys
from myapp.auth.repository import MfaRepository, PasskeyRepository, SessionRepository
from myapp.crypto import SecretBox
from myapp.database.unit_of_work import UnitOfWork
from myapp.errors import NotFound, TooManyRequests
from myapp.outbox.service import Outbox
from myapp.ratelimit import Budget
from myapp.users.models import User
from myapp.users.repository import UserRepository
from tests.support.fakes import FakeSession

NOW = datetime(2026, 5, 1, 12, 0, 10, tzinfo=UTC)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CODE_NOW = totp_code(SECRET, time_step(NOW))
KEY = Fernet.generate_key().decode()


class MfaTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.repository = mock.create_autospec(MfaRepository, instance=True)
        self.box = SecretBox([KEY])
        self.failures = mock.create_autospec(Budget, instance=True)
        self.outbox = mock.create_autospec(Outbox, instance=True)
        self.db = FakeSession()
        self.uow = UnitOfWork(self.db)
        self.passkeys = mock.create_autospec(Passkeys, instance=True)
        self.passkeys.repository = mock.create_autospec(PasskeyRepository, instance=True)
        self.passkeys.has_any.return_value = False
        self.factors = SecondFactors(
            self.repository, self.passkeys, self.box, self.failures, self.outbox
        )
        self.users = mock.create_autospec(UserRepository, instance=True)
        self.sessions = mock.create_autospec(SessionRepository, instance=True)
        self.service = MfaService(
            self.users,
            self.sessions,
            self.repository,
            self.factors,
            self.box,
            self.outbox,
            self.uow,
            issuer="myapp",
        )
        self.user = User(
            id=7, email="ada@example.com", username="ada", is_mfa_enabled=True, token_version=0
        )
        self.credential = TotpCredential(
            user_id=7,
            secret_encrypted=self.box.encrypt(SECRET),
            confirmed_at=NOW,
            last_used_step=None,
        )
        self.repository.get_totp.return_value = self.credential
        self.repository.has_confirmed_totp.return_value = True
        self.repository.use_step.return_value = True
        self.repository.use_recovery_code.return_value = True
        self.repository.confirm_totp.return_value = True
        self.repository.recovery_codes_left.return_value = 9
        self.enterContext(freeze_time(NOW))


class TestSecondFactorsCheck(MfaTestCase):
    def check(self, proof: Proof) -> str | None:
        with self.uow:
            return self.factors.check(self.user, proof, self.uow)

    def test_check_when_code_right_records_its_step_and_refunds_the_budget(self):
        self.assertEqual(self.check(Proof(code=CODE_NOW)), "totp")

        self.repository.use_step.assert_called_once_with(7, time_step(NOW))
        self.failures.spend.assert_called_once_with("user:7")
        self.failures.refund.assert_called_once_with("user:7")

    def test_check_when_code_wrong_keeps_the_budget_spent_and_records_nothing(self):
        wrong = "000000" if CODE_NOW != "000000" else "111111"

        self.assertIsNone(self.check(Proof(code=wrong)))

        self.repository.use_step.assert_not_called()
        self.failures.refund.assert_not_called()

    def test_check_when_step_already_used_refuses_the_replay(self):
        self.credential.last_used_step = time_step(NOW)

        self.assertIsNone(self.check(Proof(code=CODE_NOW)))
        self.repository.use_step.assert_not_called()

    def test_check_when_a_concurrent_request_took_the_step_refuses(self):
        self.repository.use_step.return_value = False

        self.assertIsNone(self.check(Proof(code=CODE_NOW)))
        self.failures.refund.assert_not_called()

    def test_check_when_enrolment_only_pending_refuses_codes(self):
        self.credential.confirmed_at = None

        self.assertIsNone(self.check(Proof(code=CODE_NOW)))

    def test_check_when_budget_spent_raises_before_reading_any_factor(self):
        self.failures.spend.side_effect = TooManyRequests(retry_after=60)

        with self.assertRaises(TooManyRequests):
            self.check(Proof(code=CODE_NOW))
        self.repository.get_totp.assert_not_called()

    def test_check_when_recovery_code_right_uses_it_and_tells_the_owner(self):
        self.assertEqual(self.check(Proof(recovery_code="7kq4 mz2h xwt9")), "recovery_code")

        self.repository.use_recovery_code.assert_called_once_with(
            7, recovery_code_hash(7, normalise_recovery_code("7KQ4-MZ2H-XWT9")), NOW
        )
        (to, message), kwargs = self.outbox.queue.call_args
        self.assertEqual((to, kwargs["kind"]), ("ada@example.com", "mfa_recovery_code_used"))
        self.assertIn("9 unused codes are left", message.text)

    def test_check_when_recovery_code_unknown_or_used_refuses_and_sends_nothing(self):
        self.repository.use_recovery_code.return_value = False

        self.assertIsNone(self.check(Proof(recovery_code="7KQ4-MZ2H-XWT9")))
        self.outbox.queue.assert_not_called()


class TestEnrolment(MfaTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.user.is_mfa_enabled = False
        self.credential.confirmed_at = None
        self.repository.has_confirmed_totp.return_value = False

    def test_start_when_off_stores_the_secret_encrypted_and_returns_it_once(self):
        setup = self.service.start_totp(self.user)

        (user_id, stored, when), _ = self.repository.start_totp.call_args
        self.assertEqual((user_id, when), (7, NOW))
        self.assertNotIn(setup.secret, stored)
        self.assertEqual(self.box.decrypt(stored), setup.secret)
        self.assertIn(f"secret={setup.secret}", setup.otpauth_uri)
        self.assertEqual(self.db.commits, 1)

    def test_start_when_already_on_refuses_and_stores_nothing(self):
        self.user.is_mfa_enabled = True
        self.repository.has_confirmed_totp.return_value = True

        with self.assertRaises(TotpAlreadyOn):
            self.service.start_totp(self.user)
        self.repository.start_totp.assert_not_called()

    def test_confirm_when_code_right_turns_on_with_ten_hashed_codes_in_one_commit(self):
        codes = self.service.confirm_totp(self.user, CODE_NOW)

        self.assertEqual(len(codes), 10)
        self.repository.confirm_totp.assert_called_once_with(7, time_step(NOW), NOW)
        (user_id, hashes, _), _ = self.repository.replace_recovery_codes.call_args
        self.assertEqual(hashes, [recovery_code_hash(7, normalise_recovery_code(c)) for c in codes])
        self.assertTrue(self.user.is_mfa_enabled)
        self.assertEqual(self.outbox.queue_notice.call_args.kwargs["kind"], "mfa_enabled")
        self.assertEqual((self.db.commits, self.db.rollbacks), (1, 0))

    def test_confirm_when_code_wrong_raises_and_writes_nothing(self):
        with self.assertRaises(WrongEnrolmentCode):
            self.service.confirm_totp(self.user, "000000" if CODE_NOW != "000000" else "111111")

        self.repository.confirm_totp.assert_not_called()
        self.assertFalse(self.user.is_mfa_enabled)
        self.assertEqual(self.db.commits, 0)

    def test_confirm_when_nothing_pending_raises(self):
        self.repository.get_totp.return_value = None

        with self.assertRaises(NoPendingEnrolment):
            self.service.confirm_totp(self.user, CODE_NOW)

    def test_confirm_when_a_concurrent_confirmation_won_rolls_back(self):
        self.repository.confirm_totp.return_value = False

        with self.assertRaises(NoPendingEnrolment):
            self.service.confirm_totp(self.user, CODE_NOW)

        self.repository.replace_recovery_codes.assert_not_called()
        self.assertEqual((self.db.commits, self.db.rollbacks), (0, 1))


class TestRemoval(MfaTestCase):
    def test_disable_when_code_right_removes_factors_and_other_sessions(self):
        self.service.disable_totp(self.user, Proof(code=CODE_NOW), keep_session="s1")

        self.repository.delete_totp.assert_called_with(7)
        self.repository.delete_recovery_codes.assert_called_once_with(7)
        self.sessions.revoke_all.assert_called_once_with(7, NOW, keep="s1")
        self.assertFalse(self.user.is_mfa_enabled)
        self.assertEqual(self.outbox.queue_notice.call_args.kwargs["kind"], "mfa_disabled")
        self.assertEqual(self.db.commits, 1)

    def test_disable_when_code_wrong_raises_and_rolls_back(self):
        self.repository.use_step.return_value = False

        with self.assertRaises(WrongCode):
            self.service.disable_totp(self.user, Proof(code=CODE_NOW), keep_session="s1")

        self.repository.delete_totp.assert_not_called()
        self.assertTrue(self.user.is_mfa_enabled)
        self.assertEqual((self.db.commits, self.db.rollbacks), (0, 1))

    def test_disable_when_a_passkey_remains_keeps_recovery_codes_and_the_second_factor(self):
        self.passkeys.has_any.return_value = True

        self.service.disable_totp(self.user, Proof(code=CODE_NOW), keep_session="s1")

        self.repository.delete_totp.assert_called_once_with(7)
        self.repository.delete_recovery_codes.assert_not_called()
        self.assertTrue(self.user.is_mfa_enabled)
        self.assertEqual(self.db.commits, 1)

    def test_disable_when_off_raises(self):
        self.user.is_mfa_enabled = False
        self.repository.has_confirmed_totp.return_value = False

        with self.assertRaises(TotpOff):
            self.service.disable_totp(self.user, Proof(code=CODE_NOW), keep_session="s1")

    def test_admin_reset_when_user_has_factor_removes_it_and_ends_every_session(self):
        self.users.get.return_value = self.user
        admin = User(id=1)

        self.service.admin_reset(admin, 7)

        self.repository.delete_totp.assert_called_once_with(7)
        self.repository.delete_recovery_codes.assert_called_once_with(7)
        self.passkeys.repository.delete_for_user.assert_called_once_with(7)
        self.assertEqual(self.user.token_version, 1)
        self.sessions.revoke_all.assert_called_once_with(7, NOW)
        self.assertEqual(self.outbox.queue_notice.call_args.args[0], "ada@example.com")
        self.assertEqual(self.db.commits, 1)

    def test_admin_reset_when_user_unknown_raises_not_found(self):
        self.users.get.return_value = None

        with self.assertRaises(NotFound):
            self.service.admin_reset(User(id=1), 99)

    def test_admin_reset_when_user_has_no_factor_raises_and_changes_nothing(self):
        self.user.is_mfa_enabled = False
        self.users.get.return_value = self.user
        self.repository.get_totp.return_value = None

        with self.assertRaises(NoSecondFactor):
            self.service.admin_reset(User(id=1), 7)
        self.assertEqual(self.user.token_version, 0)

    def test_regenerate_when_off_raises(self):
        self.user.is_mfa_enabled = False

        with self.assertRaises(TotpOff):
            self.service.regenerate_recovery_codes(self.user)


class TestKeyRotation(MfaTestCase):
    def test_rotate_when_some_rows_use_an_old_key_reencrypts_only_those(self):
        new_key = Fernet.generate_key().decode()
        stale = [
            TotpCredential(user_id=user_id, secret_encrypted=SecretBox([KEY]).encrypt(secret))
            for user_id, secret in ((1, "A" * 32), (3, "C" * 32))
        ]
        current = TotpCredential(user_id=2, secret_encrypted=SecretBox([new_key]).encrypt("B" * 32))
        unchanged = current.secret_encrypted
        self.service.box = SecretBox([new_key, KEY])  # ENCRYPTION_KEY=new,old
        self.repository.all_totp.return_value = [stale[0], current, stale[1]]

        changed = self.service.rotate_encryption_key()

        self.assertEqual(changed, 2)
        new_box = SecretBox([new_key])
        self.assertEqual([new_box.decrypt(c.secret_encrypted) for c in stale], ["A" * 32, "C" * 32])
        self.assertEqual(current.secret_encrypted, unchanged)
        self.assertEqual(self.db.commits, 1)
