"""UserRepository against the real database (unittest style, rollback-isolated)."""

from __future__ import annotations

from sqlalchemy import func, select

from myapp.users.models import User
from myapp.users.repository import MAX_ID, DuplicateUserError, UserRepository
from tests.factories import UserFactory
from tests.support.testcase import DatabaseTestCase


class UserRepositoryTestCase(DatabaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.repo = UserRepository()
        self.ada = UserFactory(email="ada@example.com", username="ada")

    def count(self) -> int:
        return self.repo.session.scalar(select(func.count()).select_from(User))


class TestGet(UserRepositoryTestCase):
    def test_get_when_id_exists_returns_user(self):
        self.assertEqual(self.repo.get(self.ada.id).email, "ada@example.com")

    def test_get_when_id_out_of_integer_range_returns_none_without_querying(self):
        for user_id in (0, -1, MAX_ID + 1, 10**20):
            with self.subTest(user_id=user_id):
                self.assertIsNone(self.repo.get(user_id))

    def test_get_by_email_when_stored_returns_user(self):
        self.assertEqual(self.repo.get_by_email("ada@example.com").id, self.ada.id)

    def test_get_by_email_when_unknown_returns_none(self):
        self.assertIsNone(self.repo.get_by_email("nobody@example.com"))

    def test_get_by_username_when_stored_returns_user(self):
        self.assertEqual(self.repo.get_by_username("ada").id, self.ada.id)


class TestFindConflicts(UserRepositoryTestCase):
    def test_find_conflicts_when_nothing_matches_returns_false_false(self):
        self.assertEqual(self.repo.find_conflicts("new@example.com", "new"), (False, False))

    def test_find_conflicts_when_email_matches_reports_email(self):
        self.assertEqual(self.repo.find_conflicts("ada@example.com", "new"), (True, False))

    def test_find_conflicts_when_username_matches_reports_username(self):
        self.assertEqual(self.repo.find_conflicts("new@example.com", "ada"), (False, True))

    def test_find_conflicts_when_both_match_different_users_reports_both(self):
        UserFactory(email="bob@example.com", username="bob")

        self.assertEqual(self.repo.find_conflicts("ada@example.com", "bob"), (True, True))


class TestAdd(UserRepositoryTestCase):
    def test_add_when_new_commits_row_with_defaults(self):
        user = self.repo.add(User(email="new@example.com", username="new", password_hash="h"))

        self.repo.session.expire_all()
        stored = self.repo.get(user.id)
        self.assertEqual(
            (stored.is_active, stored.is_admin, stored.token_version), (True, False, 0)
        )
        self.assertEqual(self.count(), 2)

    def test_add_when_email_duplicate_raises_and_session_stays_usable(self):
        with self.assertRaises(DuplicateUserError):
            self.repo.add(User(email="ada@example.com", username="other", password_hash="h"))

        # The failed insert was rolled back; earlier rows and the session survive.
        self.assertEqual(self.count(), 1)
        self.assertEqual(self.repo.get(self.ada.id).username, "ada")

    def test_add_when_username_duplicate_raises(self):
        with self.assertRaises(DuplicateUserError):
            self.repo.add(User(email="other@example.com", username="ada", password_hash="h"))

        self.assertEqual(self.count(), 1)


class TestSave(UserRepositoryTestCase):
    def test_save_when_field_changed_persists_it(self):
        self.ada.is_active = False

        self.repo.save(self.ada)

        self.repo.session.expire_all()
        self.assertFalse(self.repo.get(self.ada.id).is_active)
