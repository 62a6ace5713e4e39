"""The auth repositories against the real database (unittest style, rollback-isolated):
the edges of every time window, the order of every list, and that each single-row
query or compare-and-swap touches the one row it names, of the one user it names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from myapp.auth.models import (
    ActionToken,
    AuthSession,
    MfaChallenge,
    OidcAuthorization,
    OidcIdentity,
    Passkey,
    RecoveryCode,
    TotpCredential,
    WebAuthnChallenge,
)
from myapp.auth.repository import (
    ActionTokenRepository,
    MfaRepository,
    OidcRepository,
    PasskeyRepository,
    SessionRepository,
)
from tests.factories import UserFactory
from tests.support.testcase import DatabaseTestCase

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)


class AuthRepositoryTestCase(DatabaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.ada = UserFactory(username="ada", email="ada@example.com")
        self.bob = UserFactory(username="bob", email="bob@example.com")

    def add(self, *rows):
        session = SessionRepository().session
        session.add_all(rows)
        session.flush()
        return rows

    def auth_session(
        self, user, *, created_at=NOW, expires_at=NOW + HOUR, revoked_at=None, id=None
    ):
        (row,) = self.add(
            AuthSession(
                id=id or str(uuid.uuid4()),
                user_id=user.id,
                refresh_jti=str(uuid.uuid4()),
                created_at=created_at,
                expires_at=expires_at,
                revoked_at=revoked_at,
            )
        )
        return row

    def count(self, model) -> int:
        return SessionRepository().session.scalar(select(func.count()).select_from(model))


class TestSessions(AuthRepositoryTestCase):
    def test_list_active_when_a_session_ends_at_this_instant_leaves_it_out(self):
        live = self.auth_session(self.ada, expires_at=NOW + SECOND)
        self.auth_session(self.ada, expires_at=NOW)

        self.assertEqual(SessionRepository().list_active(self.ada.id, NOW), [live])

    def test_list_active_when_several_shows_newest_first_ties_by_id(self):
        # Stored in an order that is neither: the query's ORDER BY alone sorts them.
        for id, created_at in (
            ("s4", NOW),
            ("s1", NOW - 2 * HOUR),
            ("s3", NOW - HOUR),
            ("s2", NOW),
        ):
            self.auth_session(self.ada, id=id, created_at=created_at)

        listed = SessionRepository().list_active(self.ada.id, NOW + SECOND)

        self.assertEqual([s.id for s in listed], ["s2", "s4", "s3", "s1"])

    def test_rotate_when_the_jti_is_current_swaps_it_in_that_session_alone(self):
        rotated, other = self.auth_session(self.ada), self.auth_session(self.ada)
        old_jti, others_jti = rotated.refresh_jti, other.refresh_jti

        won = SessionRepository().rotate(rotated.id, old_jti, "new-jti", NOW, NOW + HOUR)

        self.assertTrue(won)
        self.assertEqual(self.jtis(), {rotated.id: "new-jti", other.id: others_jti})

    def test_rotate_when_the_jti_is_spent_or_the_session_revoked_changes_nothing(self):
        live = self.auth_session(self.ada)
        revoked = self.auth_session(self.ada, revoked_at=NOW - HOUR)
        before = self.jtis()

        spent = SessionRepository().rotate(live.id, "spent-jti", "new-jti", NOW, NOW + HOUR)
        dead = SessionRepository().rotate(
            revoked.id, revoked.refresh_jti, "new-jti", NOW, NOW + HOUR
        )

        self.assertEqual((spent, dead), (False, False))
        self.assertEqual(self.jtis(), before)

    def jtis(self) -> dict[str, str]:
        session = SessionRepository().session
        session.expire_all()
        return dict(session.execute(select(AuthSession.id, AuthSession.refresh_jti)).all())

    def test_revoke_when_already_revoked_keeps_the_first_time(self):
        earlier = NOW - HOUR
        revoked = self.auth_session(self.ada, revoked_at=earlier)

        SessionRepository().revoke(revoked.id, NOW)

        self.assertEqual(SessionRepository().get(revoked.id).revoked_at, earlier)

    def test_revoke_all_when_some_revoked_before_keeps_their_time_and_other_users(self):
        earlier = NOW - HOUR
        live, kept, revoked = (self.auth_session(self.ada) for _ in range(3))
        self.auth_session(self.ada, revoked_at=earlier, id="revoked-before")
        bobs = self.auth_session(self.bob)

        SessionRepository().revoke_all(self.ada.id, NOW, keep=kept.id)

        session = SessionRepository().session
        session.expire_all()
        revoked_at = dict(session.execute(select(AuthSession.id, AuthSession.revoked_at)).all())
        self.assertEqual(
            revoked_at,
            {
                live.id: NOW,
                revoked.id: NOW,
                kept.id: None,
                "revoked-before": earlier,
                bobs.id: None,
            },
        )

    def test_prune_when_a_session_ends_at_this_instant_deletes_it(self):
        self.auth_session(self.ada, expires_at=NOW)
        kept = self.auth_session(self.ada, expires_at=NOW + SECOND)

        removed = SessionRepository().prune(NOW)

        self.assertEqual(removed, 1)
        self.assertEqual(self.count(AuthSession), 1)
        self.assertIsNotNone(SessionRepository().get(kept.id))


class TestActionTokens(AuthRepositoryTestCase):
    def token(self, *, expires_at=NOW + HOUR, used_at=None) -> ActionToken:
        (row,) = self.add(
            ActionToken(
                user_id=self.ada.id,
                purpose="reset",
                token_hash=uuid.uuid4().hex,
                binding="b",
                expires_at=expires_at,
                used_at=used_at,
            )
        )
        return row

    def test_consume_when_already_used_is_false_and_keeps_the_first_use(self):
        used = self.token(used_at=NOW - HOUR)

        self.assertFalse(ActionTokenRepository().consume(used.id, NOW))
        self.assertEqual(ActionTokenRepository().get_by_hash(used.token_hash).used_at, NOW - HOUR)

    def test_prune_when_rows_end_at_this_instant_deletes_them_and_keeps_later_ones(self):
        # One of each kind of short-lived row that ends now, and one that ends later.
        for expires_at in (NOW, NOW + SECOND):
            self.token(expires_at=expires_at)
            self.add(
                MfaChallenge(
                    user_id=self.ada.id,
                    token_hash=uuid.uuid4().hex,
                    binding="b",
                    expires_at=expires_at,
                ),
                WebAuthnChallenge(
                    challenge_hash=uuid.uuid4().hex, ceremony="login", expires_at=expires_at
                ),
                OidcAuthorization(
                    state_hash=uuid.uuid4().hex,
                    browser_hash="b",
                    provider="example",
                    nonce="n",
                    code_verifier="v",
                    next_path="/",
                    expires_at=expires_at,
                ),
            )

        removed = ActionTokenRepository().prune(NOW)

        self.assertEqual(removed, 4)
        counts = [
            self.count(model)
            for model in (ActionToken, MfaChallenge, WebAuthnChallenge, OidcAuthorization)
        ]
        self.assertEqual(counts, [1, 1, 1, 1])


class TestRecoveryCodes(AuthRepositoryTestCase):
    def test_codes_when_two_users_have_some_are_counted_and_used_per_user(self):
        repository = MfaRepository()
        repository.replace_recovery_codes(self.ada.id, ["a1", "a2"], NOW)
        repository.replace_recovery_codes(self.bob.id, ["b1"], NOW)

        # Bob cannot spend Ada's code, even knowing its hash.
        self.assertFalse(repository.use_recovery_code(self.bob.id, "a1", NOW))
        self.assertTrue(repository.use_recovery_code(self.ada.id, "a1", NOW))

        self.assertEqual(
            (
                repository.recovery_codes_left(self.ada.id),
                repository.recovery_codes_left(self.bob.id),
            ),
            (1, 1),
        )
        self.assertEqual(self.count(RecoveryCode), 3)

    def test_replace_recovery_codes_when_a_set_exists_stores_the_new_set_at_that_time(self):
        repository = MfaRepository()
        repository.replace_recovery_codes(self.ada.id, ["old"], NOW - HOUR)

        repository.replace_recovery_codes(self.ada.id, ["new1", "new2"], NOW)

        stored = repository.session.execute(select(RecoveryCode.code_hash, RecoveryCode.created_at))
        self.assertEqual(sorted(stored), [("new1", NOW), ("new2", NOW)])


class TestMfaChallenges(AuthRepositoryTestCase):
    MAX_ATTEMPTS = 5

    def challenge(self, **columns) -> MfaChallenge:
        (row,) = self.add(
            MfaChallenge(
                user_id=self.ada.id,
                token_hash=uuid.uuid4().hex,
                binding="b",
                expires_at=NOW + HOUR,
                **columns,
            )
        )
        return row

    def consume(self, challenge: MfaChallenge) -> bool:
        return MfaRepository().consume_challenge(challenge.id, NOW, self.MAX_ATTEMPTS)

    def test_consume_when_open_spends_that_challenge_alone(self):
        spent, other = self.challenge(), self.challenge()

        self.assertTrue(self.consume(spent))
        self.assertFalse(self.consume(spent))  # a mfa_token works once

        self.assertTrue(self.consume(other))

    def test_consume_when_attempts_used_up_is_refused(self):
        # The last wrong code allowed leaves the challenge usable; one more does not.
        last_chance = self.challenge(failed_attempts=self.MAX_ATTEMPTS - 1)
        exhausted = self.challenge(failed_attempts=self.MAX_ATTEMPTS)

        self.assertTrue(self.consume(last_chance))
        self.assertFalse(self.consume(exhausted))


class TestTotp(AuthRepositoryTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.repository = MfaRepository()
        for user in (self.ada, self.bob):
            self.repository.start_totp(user.id, "pending", NOW)

    def stored(self) -> dict[int, TotpCredential]:
        session = self.repository.session
        session.expire_all()
        return {c.user_id: c for c in session.scalars(select(TotpCredential))}

    def last_steps(self) -> dict[int, int | None]:
        return {user_id: c.last_used_step for user_id, c in self.stored().items()}

    def test_start_totp_when_first_stores_the_pending_secret_at_that_time(self):
        ada = self.stored()[self.ada.id]

        self.assertEqual(
            (ada.secret_encrypted, ada.created_at, ada.confirmed_at), ("pending", NOW, None)
        )

    def test_start_totp_when_restarted_replaces_the_secret_and_forgets_used_steps(self):
        self.repository.use_step(self.ada.id, 100)

        self.repository.start_totp(self.ada.id, "again", NOW + HOUR)

        ada = self.stored()[self.ada.id]
        self.assertEqual((ada.secret_encrypted, ada.created_at), ("again", NOW + HOUR))
        self.assertIsNone(ada.last_used_step)
        self.assertTrue(self.repository.use_step(self.ada.id, 50))  # the new secret's codes

    def test_confirm_totp_when_pending_turns_on_that_users_secret_once(self):
        first = self.repository.confirm_totp(self.ada.id, 7, NOW)
        again = self.repository.confirm_totp(self.ada.id, 8, NOW + HOUR)

        self.assertEqual((first, again), (True, False))  # a concurrent confirmation loses
        stored = self.stored()
        self.assertEqual(
            (stored[self.ada.id].confirmed_at, stored[self.ada.id].last_used_step), (NOW, 7)
        )
        self.assertEqual(
            (stored[self.bob.id].confirmed_at, stored[self.bob.id].last_used_step), (None, None)
        )

    def test_use_step_when_only_later_steps_count_records_each_once(self):
        repository = self.repository

        outcomes = [repository.use_step(self.ada.id, step) for step in (100, 100, 99, 101)]

        # A code works once, and none of an earlier step after it: no replay.
        self.assertEqual(outcomes, [True, False, False, True])
        self.assertEqual(self.last_steps(), {self.ada.id: 101, self.bob.id: None})


class TestPasskeys(AuthRepositoryTestCase):
    def passkey(self, user, *, sign_count=0) -> Passkey:
        (row,) = self.add(
            Passkey(
                user_id=user.id,
                credential_id=uuid.uuid4().bytes,
                public_key=b"k",
                user_handle=b"h",
                sign_count=sign_count,
                name="Laptop",
            )
        )
        return row

    def test_list_for_user_when_several_shows_oldest_first_ties_by_id(self):
        # Stored in an order that is neither: the query's ORDER BY alone sorts them.
        for id, created_at in (("p3", NOW), ("p1", NOW + HOUR), ("p2", NOW)):
            self.add(
                Passkey(
                    id=id,
                    user_id=self.ada.id,
                    credential_id=id.encode(),
                    public_key=b"k",
                    user_handle=b"h",
                    name=id,
                    created_at=created_at,
                )
            )
        self.passkey(self.bob)

        listed = PasskeyRepository().list_for_user(self.ada.id)

        self.assertEqual([p.id for p in listed], ["p2", "p3", "p1"])

    def test_get_for_user_when_the_passkey_is_another_users_is_none(self):
        adas = self.passkey(self.ada)
        self.passkey(self.bob)

        self.assertIsNone(PasskeyRepository().get_for_user(adas.id, self.bob.id))
        self.assertEqual(PasskeyRepository().get_for_user(adas.id, self.ada.id), adas)

    def test_use_when_counter_moves_records_that_passkey_alone(self):
        used, other = self.passkey(self.ada, sign_count=3), self.passkey(self.ada, sign_count=3)

        self.assertTrue(PasskeyRepository().use(used.id, 4, True, NOW))

        stored = {p.id: (p.sign_count, p.backed_up, p.last_used_at) for p in self.reload()}
        self.assertEqual(stored[used.id], (4, True, NOW))
        self.assertEqual(stored[other.id], (3, False, None))

    def test_use_when_counter_does_not_move_forward_is_false(self):
        # Same value, or back to 0 from a counter that counts: a clone or a replay.
        for stored_count, received in ((5, 5), (5, 4), (5, 0)):
            with self.subTest(stored=stored_count, received=received):
                passkey = self.passkey(self.ada, sign_count=stored_count)

                self.assertFalse(PasskeyRepository().use(passkey.id, received, False, NOW))

    def test_use_when_the_authenticator_keeps_no_counter_accepts_zero_again(self):
        passkey = self.passkey(self.ada, sign_count=0)

        self.assertTrue(PasskeyRepository().use(passkey.id, 0, False, NOW))

    def test_take_challenge_when_two_are_open_spends_the_named_one_alone(self):
        taken, other = self.add(
            *(
                WebAuthnChallenge(challenge_hash=h, ceremony="login", expires_at=NOW + HOUR)
                for h in ("taken", "other")
            )
        )

        self.assertEqual(PasskeyRepository().take_challenge("taken", NOW), taken)
        self.assertIsNone(PasskeyRepository().take_challenge("taken", NOW))  # spent

        self.assertEqual(PasskeyRepository().take_challenge("other", NOW), other)
        self.assertIsNone(PasskeyRepository().take_challenge("unknown", NOW))

    def reload(self) -> list[Passkey]:
        session = PasskeyRepository().session
        session.expire_all()
        return list(session.scalars(select(Passkey)))


class TestOidcIdentities(AuthRepositoryTestCase):
    def identity(self, user, subject, created_at=NOW) -> OidcIdentity:
        (row,) = self.add(
            OidcIdentity(
                id=subject,
                user_id=user.id,
                provider="example",
                subject=subject,
                created_at=created_at,
            )
        )
        return row

    def test_identities_for_when_several_lists_oldest_first_ties_by_id(self):
        # Stored in an order that is neither: the query's ORDER BY alone sorts them.
        for subject, created_at in (("i1", NOW + HOUR), ("i3", NOW), ("i2", NOW)):
            self.identity(self.ada, subject, created_at)
        self.identity(self.bob, "i0", NOW - HOUR)

        listed = OidcRepository().identities_for(self.ada.id)

        self.assertEqual([i.id for i in listed], ["i2", "i3", "i1"])

    def test_identity_when_two_providers_know_one_subject_finds_each_ones(self):
        # A subject is unique per provider only: "1234" at one is nobody at another.
        first = self.add(OidcIdentity(user_id=self.ada.id, provider="one", subject="1234"))[0]
        second = self.add(OidcIdentity(user_id=self.bob.id, provider="two", subject="1234"))[0]

        found = [OidcRepository().identity(p, "1234") for p in ("one", "two", "three")]

        self.assertEqual(found, [first, second, None])

    def test_identity_for_user_when_asked_finds_that_identity_of_that_user_only(self):
        first, second = self.identity(self.ada, "i1"), self.identity(self.ada, "i2")

        found = [OidcRepository().identity_for_user(i.id, self.ada.id) for i in (first, second)]

        self.assertEqual(found, [first, second])
        self.assertIsNone(OidcRepository().identity_for_user(first.id, self.bob.id))
