"""``Passkeys`` and ``PasskeyService`` without a database: the repository is a
mock, the relying party and the authenticator's cryptography are real. What is
checked, in which order, and what one transaction writes."""

from __future__ import annotations

import unittest
from datetime import UTC, datetime, timedelta
from unittest import mock

from freezegun import freeze_time

from myapp.auth.models import Passkey, WebAuthnCeremony, WebAuthnChallenge
from myapp.auth.passkeys import LastWayToSignIn, Passkeys, PasskeyService
from myapp.auth.relying_party import RelyingParty, challenge_hash, parse_assertion
from myapp.auth.repository import MfaRepository, OidcRepository, PasskeyRepository
from myapp.database.unit_of_work import UnitOfWork
from myapp.outbox.service import Outbox
from myapp.passwords import unusable_password
from myapp.users.models import User
from myapp.users.repository import UserRepository
from tests.support.fakes import FakeSession
from tests.support.passkeys import SoftAuthenticator

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ORIGIN = "https://accounts.example.com"
RP = RelyingParty("accounts.example.com", "myapp", [ORIGIN], timedelta(minutes=5))
OPTIONS = {"rp": {"id": RP.id}, "user": {"id": "aGFuZGxl"}, "challenge": "Y2hhbGxlbmdl"}


class PasskeyTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.enterContext(freeze_time(NOW))
        self.repository = mock.create_autospec(PasskeyRepository, instance=True)
        self.passkeys = Passkeys(self.repository, RP)
        self.user = User(id=7, email="ada@example.com", is_mfa_enabled=True, password_hash="$h")
        self.device = SoftAuthenticator(RP.id, ORIGIN)
        self.device.create(OPTIONS)
        credential = self.device.credentials[0]
        self.stored = Passkey(
            id="p1",
            user_id=7,
            credential_id=credential.id,
            public_key=self.device.public_key(credential),
            user_handle=credential.user_handle,
            sign_count=0,
            name="Laptop",
        )
        self.challenge = WebAuthnChallenge(
            challenge_hash=challenge_hash(b"challenge"),
            ceremony=WebAuthnCeremony.SECOND_FACTOR,
            user_id=7,
            expires_at=NOW + timedelta(minutes=5),
        )
        self.repository.take_challenge.return_value = self.challenge
        self.repository.by_credential_id.return_value = self.stored
        self.repository.use.return_value = True

    def answer(self, **wrong):
        return parse_assertion(self.device.get(OPTIONS, **wrong))


class TestVerify(PasskeyTestCase):
    def test_verify_when_everything_holds_records_the_new_counter_and_backup_state(self):
        for backed_up in (False, True):
            with self.subTest(backed_up=backed_up):
                self.repository.reset_mock()
                answer = self.answer(backed_up=backed_up)

                use = self.passkeys.verify(answer, WebAuthnCeremony.SECOND_FACTOR, self.user)

                self.assertEqual((use.passkey, use.user_id), (self.stored, 7))
                self.repository.take_challenge.assert_called_once_with(
                    challenge_hash(b"challenge"), NOW
                )
                self.repository.use.assert_called_once_with(
                    "p1", self.device.credentials[0].sign_count, backed_up, NOW
                )

    def test_verify_when_challenge_unknown_or_spent_looks_no_further(self):
        self.repository.take_challenge.return_value = None

        self.assertIsNone(self.passkeys.verify(self.answer(), WebAuthnCeremony.SECOND_FACTOR))
        self.repository.by_credential_id.assert_not_called()

    def test_verify_when_challenge_issued_for_another_ceremony_refuses(self):
        self.challenge.ceremony = WebAuthnCeremony.LOGIN

        self.assertIsNone(self.passkeys.verify(self.answer(), WebAuthnCeremony.SECOND_FACTOR))
        self.repository.use.assert_not_called()

    def test_verify_when_challenge_issued_to_another_user_refuses(self):
        self.challenge.user_id = 8

        self.assertIsNone(
            self.passkeys.verify(self.answer(), WebAuthnCeremony.SECOND_FACTOR, self.user)
        )
        self.repository.use.assert_not_called()

    def test_verify_when_challenge_expired_refuses(self):
        self.challenge.expires_at = NOW

        self.assertIsNone(self.passkeys.verify(self.answer(), WebAuthnCeremony.SECOND_FACTOR))

    def test_verify_when_passkey_is_another_users_refuses(self):
        self.stored.user_id = 8

        self.assertIsNone(
            self.passkeys.verify(self.answer(), WebAuthnCeremony.SECOND_FACTOR, self.user)
        )
        self.repository.use.assert_not_called()

    def test_verify_when_user_handle_differs_from_the_passkeys_refuses(self):
        self.stored.user_handle = b"someone else"

        self.assertIsNone(self.passkeys.verify(self.answer(), WebAuthnCeremony.SECOND_FACTOR))
        self.repository.use.assert_not_called()

    def test_verify_when_signature_made_for_another_origin_refuses(self):
        answer = self.answer(origin="https://evil.example")

        self.assertIsNone(self.passkeys.verify(answer, WebAuthnCeremony.SECOND_FACTOR))
        self.repository.use.assert_not_called()

    def test_verify_when_counter_swap_fails_refuses_and_audits_a_clone(self):
        self.repository.use.return_value = False
        self.stored.sign_count = 9

        with self.assertLogs("myapp.audit") as logs:
            use = self.passkeys.verify(
                self.answer(sign_count=4), WebAuthnCeremony.SECOND_FACTOR, self.user
            )

        self.assertIsNone(use)
        (record,) = logs.records
        self.assertEqual(
            (record.getMessage(), record.stored, record.received),
            ("passkey.counter_regressed", 9, 4),
        )


class TestDelete(PasskeyTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.db = FakeSession()
        self.users = mock.create_autospec(UserRepository, instance=True)
        self.factors = mock.create_autospec(MfaRepository, instance=True)
        self.identities = mock.create_autospec(OidcRepository, instance=True)
        self.identities.count_for_user.return_value = 0
        self.outbox = mock.create_autospec(Outbox, instance=True)
        self.service = PasskeyService(
            self.users,
            self.passkeys,
            self.factors,
            self.identities,
            self.outbox,
            UnitOfWork(self.db),
        )
        self.repository.get_for_user.return_value = self.stored
        self.repository.count_for_user.return_value = 1
        self.factors.has_confirmed_totp.return_value = False

    def test_delete_when_last_passkey_of_an_account_without_password_refuses(self):
        self.user.password_hash = unusable_password()

        with self.assertRaises(LastWayToSignIn):
            self.service.delete(self.user, "p1")

        self.repository.delete.assert_not_called()
        self.assertEqual((self.db.commits, self.db.rollbacks), (0, 1))

    def test_delete_when_a_linked_provider_account_remains_lets_the_last_one_go(self):
        self.user.password_hash = unusable_password()
        self.identities.count_for_user.return_value = 1

        self.service.delete(self.user, "p1")

        self.repository.delete.assert_called_once_with(self.stored)
        self.assertEqual(self.db.commits, 1)

    def test_delete_when_last_second_factor_turns_two_factor_off_in_one_commit(self):
        self.service.delete(self.user, "p1")

        self.repository.delete.assert_called_once_with(self.stored)
        self.factors.delete_recovery_codes.assert_called_once_with(7)
        self.assertFalse(self.user.is_mfa_enabled)
        self.assertEqual(self.outbox.queue_notice.call_args.kwargs["kind"], "passkey_removed")
        self.assertEqual(self.db.commits, 1)

    def test_delete_when_totp_remains_keeps_the_recovery_codes(self):
        self.factors.has_confirmed_totp.return_value = True

        self.service.delete(self.user, "p1")

        self.factors.delete_recovery_codes.assert_not_called()
        self.assertTrue(self.user.is_mfa_enabled)
