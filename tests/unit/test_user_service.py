"""UserService rules (profiles, administration), collaborators mocked."""

from __future__ import annotations

import unittest
from datetime import UTC, datetime
from unittest import mock

from freezegun import freeze_time

from myapp.database.unit_of_work import UnitOfWork
from myapp.errors import Conflict, NotFound
from myapp.outbox.service import Outbox
from myapp.passwords import PasswordHasher
from myapp.users.events import AccountEvents
from myapp.users.models import User
from myapp.users.repository import DuplicateUserError, UserRepository, UserSearch
from myapp.users.service import (
    InvalidEmailChangeToken,
    SelfLockout,
    UserPage,
    UserService,
    WrongPassword,
)
from tests.support.fakes import FakeSession

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class UserServiceTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.users = mock.create_autospec(UserRepository, instance=True)
        self.passwords = mock.create_autospec(PasswordHasher, instance=True)
        # What other domains (auth) do about a change is theirs; here: that it is announced.
        self.events = mock.create_autospec(AccountEvents, instance=True)
        self.db = FakeSession()
        self.uow = UnitOfWork(self.db)
        self.outbox = mock.create_autospec(Outbox, instance=True)
        self.service = UserService(self.users, self.passwords, self.events, self.outbox, self.uow)
        self.admin = User(
            id=1,
            email="root@example.com",
            username="root",
            is_admin=True,
            is_active=True,
            token_version=0,
            password_hash="$a",
        )
        self.user = User(
            id=7,
            email="ada@example.com",
            username="ada",
            is_admin=False,
            is_active=True,
            is_verified=True,
            token_version=0,
            password_hash="$h",
        )
        self.users.get.side_effect = {1: self.admin, 7: self.user}.get
        self.users.find_conflicts.return_value = (False, False)
        self.users.save.side_effect = lambda user: user
        self.enterContext(freeze_time(NOW))


class TestGetAndSearch(UserServiceTestCase):
    def test_get_when_user_exists_returns_it(self):
        self.assertIs(self.service.get(7), self.user)

    def test_get_when_user_missing_raises_not_found(self):
        with self.assertRaises(NotFound):
            self.service.get(3)

    def test_search_when_called_returns_page_with_total(self):
        self.users.search.return_value = ([self.user], 41)

        page = self.service.search(UserSearch(page=2, per_page=20))

        self.assertEqual(page, UserPage([self.user], 41, 2, 20))
        self.assertEqual(page.total_pages, 3)

    def test_total_pages_when_no_rows_is_one(self):
        self.assertEqual(UserPage([], 0, 1, 20).total_pages, 1)


class TestUpdateProfile(UserServiceTestCase):
    """Changes arrive normalised (the schema's job: tests/unit/test_schemas.py)."""

    def test_update_when_username_changes_saves_it_without_email_side_effects(self):
        result = self.service.update_profile(self.user, {"username": "lovelace"})

        self.users.find_conflicts.assert_called_once_with(None, "lovelace", exclude_id=7)
        self.assertEqual(result.username, "lovelace")
        self.assertTrue(result.is_verified)
        self.users.save.assert_called_once_with(self.user)
        self.events.email_changed.assert_not_called()
        self.assertEqual(self.db.commits, 1)

    def test_update_when_email_changes_keeps_it_pending_and_asks_for_proof(self):
        self.service.update_profile(self.user, {"email": "new@example.com"})

        self.assertEqual(
            (self.user.email, self.user.pending_email, self.user.is_verified),
            ("ada@example.com", "new@example.com", True),
        )
        self.users.find_conflicts.assert_any_call("new@example.com", None, exclude_id=7)
        self.events.email_change_requested.assert_called_once_with(self.user)
        self.events.email_changed.assert_not_called()
        self.outbox.queue.assert_not_called()  # the old address is told on confirmation
        self.assertEqual(self.db.commits, 1)

    def test_admin_update_when_email_changes_moves_at_once_and_tells_the_old_address(self):
        self.user.pending_email = "asked@example.com"

        self.service.admin_update(self.admin, 7, {"email": "new@example.com"})

        self.assertEqual(
            (self.user.email, self.user.pending_email, self.user.is_verified),
            ("new@example.com", None, False),
        )
        self.events.email_changed.assert_called_once_with(self.user)
        # The old address is told, in the same transaction: it is how the owner
        # learns of a takeover.
        (to, notice), queued = self.outbox.queue.call_args
        self.assertEqual((to, queued), ("ada@example.com", {"kind": "email_changed"}))
        self.assertIn("new@example.com", notice.text)

    def test_update_when_email_unchanged_keeps_verification(self):
        self.service.update_profile(self.user, {"email": "ada@example.com"})

        self.assertTrue(self.user.is_verified)
        self.events.email_changed.assert_not_called()

    def test_update_when_value_taken_raises_conflict_and_saves_nothing(self):
        for conflicts in ((True, False), (False, True)):
            with self.subTest(conflicts=conflicts):
                self.users.find_conflicts.return_value = conflicts

                with self.assertRaises(Conflict):
                    self.service.update_profile(self.user, {"email": "x@example.com"})

                self.users.save.assert_not_called()
                self.assertEqual(self.db.commits, 0)

    def test_update_when_save_loses_race_raises_conflict_and_rolls_back(self):
        self.users.save.side_effect = DuplicateUserError("unique")

        with self.assertRaises(Conflict) as caught:
            self.service.update_profile(self.user, {"email": "taken@example.com"})

        self.assertEqual(
            caught.exception.detail, "An account with this email or username already exists."
        )
        self.events.email_changed.assert_not_called()
        self.assertEqual((self.db.commits, self.db.rollbacks), (0, 1))


class TestConfirmEmailChange(UserServiceTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.user.pending_email = "new@example.com"
        self.user.is_verified = False
        self.events.redeem_email_change.return_value = self.user

    def test_confirm_when_token_proves_the_address_moves_the_account_there(self):
        result = self.service.confirm_email_change("raw")

        self.assertIs(result, self.user)
        self.assertEqual(
            (self.user.email, self.user.pending_email, self.user.is_verified),
            ("new@example.com", None, True),
        )
        self.events.redeem_email_change.assert_called_once_with("raw")
        self.events.email_change_confirmed.assert_called_once_with(self.user)
        (to, _), queued = self.outbox.queue.call_args
        self.assertEqual((to, queued), ("ada@example.com", {"kind": "email_changed"}))
        self.assertEqual(self.db.commits, 1)

    def test_confirm_when_token_bad_raises_and_changes_nothing(self):
        self.events.redeem_email_change.return_value = None

        with self.assertRaises(InvalidEmailChangeToken):
            self.service.confirm_email_change("bad")

        self.assertEqual(self.user.email, "ada@example.com")
        self.assertEqual((self.db.commits, self.db.rollbacks), (0, 1))

    def test_confirm_when_address_taken_meanwhile_raises_409_and_rolls_back(self):
        self.users.find_conflicts.return_value = (True, False)

        with self.assertRaises(Conflict) as caught:
            self.service.confirm_email_change("raw")

        self.assertEqual(caught.exception.detail, "An account with this email already exists.")
        self.assertEqual(self.user.email, "ada@example.com")
        self.users.find_conflicts.assert_called_once_with(
            "new@example.com", None, exclude_id=self.user.id
        )
        self.events.email_change_confirmed.assert_not_called()
        self.assertEqual((self.db.commits, self.db.rollbacks), (0, 1))

    def test_confirm_when_the_save_loses_a_race_raises_409_and_rolls_back(self):
        # Checked free, then taken before the write: the unique constraint decides.
        self.users.save.side_effect = DuplicateUserError("taken")

        with self.assertRaises(Conflict) as caught:
            self.service.confirm_email_change("raw")

        self.assertEqual(caught.exception.detail, "An account with this email already exists.")
        self.events.email_change_confirmed.assert_not_called()
        self.assertEqual((self.db.commits, self.db.rollbacks), (0, 1))


class TestChangePassword(UserServiceTestCase):
    def test_change_password_when_current_correct_sets_hash_and_announces_it(self):
        self.passwords.verify.return_value = True
        self.passwords.hash.return_value = "$new"

        self.service.change_password(self.user, "old pw", "new password!", keep_session="s1")

        self.assertEqual(self.user.password_hash, "$new")
        self.passwords.verify.assert_called_once_with("$h", "old pw")
        self.events.password_changed.assert_called_once_with(self.user, keep_session="s1")
        self.users.save.assert_called_once_with(self.user)
        self.assertEqual(self.db.commits, 1)
        (to, notice), queued = self.outbox.queue.call_args
        self.assertEqual((to, queued), ("ada@example.com", {"kind": "password_changed"}))
        self.assertNotIn("token", notice.text + notice.html)

    def test_change_password_when_current_wrong_raises_and_changes_nothing(self):
        self.passwords.verify.return_value = False

        with self.assertRaises(WrongPassword) as caught:
            self.service.change_password(self.user, "bad", "new password!", keep_session="s1")

        self.assertEqual(caught.exception.detail, "The current password is incorrect.")
        self.assertEqual(self.user.password_hash, "$h")
        self.events.password_changed.assert_not_called()
        self.users.save.assert_not_called()
        self.assertEqual(self.db.commits, 0)


class TestDeleteAccount(UserServiceTestCase):
    def test_delete_account_when_password_correct_deletes_user(self):
        self.passwords.verify.return_value = True

        self.service.delete_account(self.user, "pw")

        self.users.delete.assert_called_once_with(self.user)
        self.assertEqual(self.db.commits, 1)
        (to, _), queued = self.outbox.queue.call_args
        self.assertEqual((to, queued), ("ada@example.com", {"kind": "account_deleted"}))

    def test_delete_account_when_password_wrong_raises_and_keeps_user(self):
        self.passwords.verify.return_value = False

        with self.assertRaises(WrongPassword):
            self.service.delete_account(self.user, "bad")

        self.users.delete.assert_not_called()


class TestAdminUpdate(UserServiceTestCase):
    def test_admin_update_when_deactivating_user_revokes_everything(self):
        result = self.service.admin_update(self.admin, 7, {"is_active": False})

        self.assertFalse(result.is_active)
        self.assertEqual(result.token_version, 1)
        self.events.access_lost.assert_called_once_with(self.user)
        self.assertEqual(self.db.commits, 1)

    def other_admin(self) -> User:
        other = User(
            id=9,
            email="o@example.com",
            username="o",
            is_admin=True,
            is_active=True,
            token_version=4,
        )
        self.users.get.side_effect = {1: self.admin, 9: other}.get
        return other

    def test_admin_update_when_demoting_admin_revokes_everything(self):
        other_admin = self.other_admin()

        self.service.admin_update(self.admin, 9, {"is_admin": False})

        self.assertEqual((other_admin.is_admin, other_admin.token_version), (False, 5))
        self.events.access_lost.assert_called_once_with(other_admin)

    def test_admin_update_when_renaming_another_admin_revokes_nothing(self):
        # Only losing access or rights ends sessions, not being an admin.
        other_admin = self.other_admin()

        self.service.admin_update(self.admin, 9, {"username": "renamed"})

        self.assertEqual((other_admin.username, other_admin.token_version), ("renamed", 4))
        self.events.access_lost.assert_not_called()

    def test_admin_update_when_promoting_or_reactivating_revokes_nothing(self):
        self.service.admin_update(self.admin, 7, {"is_admin": True, "is_active": True})

        self.assertTrue(self.user.is_admin)
        self.assertEqual(self.user.token_version, 0)
        self.events.access_lost.assert_not_called()

    def test_admin_update_when_targeting_self_to_lock_out_raises_and_changes_nothing(self):
        for changes in ({"is_active": False}, {"is_admin": False}):
            with self.subTest(changes=changes):
                with self.assertRaises(SelfLockout):
                    self.service.admin_update(self.admin, 1, changes)

                self.assertTrue(self.admin.is_admin and self.admin.is_active)
                self.users.save.assert_not_called()
                self.assertEqual(self.db.commits, 0)

    def test_admin_update_when_renaming_self_is_allowed(self):
        self.service.admin_update(self.admin, 1, {"username": "boss"})

        self.assertEqual(self.admin.username, "boss")

    def test_admin_update_when_user_missing_raises_not_found(self):
        with self.assertRaises(NotFound):
            self.service.admin_update(self.admin, 3, {"is_active": False})


class TestAdminDelete(UserServiceTestCase):
    def test_admin_delete_when_other_user_deletes_it(self):
        self.service.admin_delete(self.admin, 7)

        self.users.delete.assert_called_once_with(self.user)

    def test_admin_delete_when_self_raises_and_deletes_nothing(self):
        with self.assertRaises(SelfLockout):
            self.service.admin_delete(self.admin, 1)

        self.users.delete.assert_not_called()
