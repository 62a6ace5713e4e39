"""AuthService rules, with every collaborator mocked (no app, no database)."""

from __future__ import annotations

import unittest
from unittest import mock

from myapp.auth.service import AuthService, InvalidCredentials
from myapp.auth.tokens import TokenPair, TokenService
from myapp.errors import Conflict
from myapp.passwords import PasswordHasher
from myapp.users.models import User
from myapp.users.repository import DuplicateUserError, UserRepository

TOKENS = TokenPair(access_token="a", refresh_token="r", expires_in=900)


class AuthServiceTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.users = mock.create_autospec(UserRepository, instance=True)
        self.passwords = mock.create_autospec(PasswordHasher, instance=True)
        self.tokens = mock.create_autospec(TokenService, instance=True)
        self.service = AuthService(self.users, self.passwords, self.tokens)


class TestRegister(AuthServiceTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.users.find_conflicts.return_value = (False, False)
        self.users.add.side_effect = lambda user: user
        self.passwords.hash.return_value = "$argon2id$hash"

    def test_register_when_new_stores_normalised_user_with_hash(self):
        user = self.service.register("  Ada@Example.COM ", " Ada ", "a long password!")

        self.users.find_conflicts.assert_called_once_with("ada@example.com", "ada")
        self.passwords.hash.assert_called_once_with("a long password!")
        self.users.add.assert_called_once_with(user)
        self.assertEqual(
            (user.email, user.username, user.password_hash),
            ("ada@example.com", "ada", "$argon2id$hash"),
        )

    def test_register_when_email_taken_raises_conflict_and_adds_nothing(self):
        self.users.find_conflicts.return_value = (True, False)

        with self.assertRaises(Conflict) as caught:
            self.service.register("ada@example.com", "ada", "a long password!")

        self.assertIn("email", caught.exception.detail)
        self.users.add.assert_not_called()
        self.passwords.hash.assert_not_called()

    def test_register_when_username_taken_raises_conflict_and_adds_nothing(self):
        self.users.find_conflicts.return_value = (False, True)

        with self.assertRaises(Conflict) as caught:
            self.service.register("ada@example.com", "ada", "a long password!")

        self.assertIn("username", caught.exception.detail)
        self.users.add.assert_not_called()

    def test_register_when_insert_loses_race_raises_conflict(self):
        self.users.add.side_effect = DuplicateUserError("unique violation")

        with self.assertRaises(Conflict):
            self.service.register("ada@example.com", "ada", "a long password!")


class TestLogin(AuthServiceTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.user = User(
            id=7, email="ada@example.com", username="ada", password_hash="$h", is_active=True
        )
        self.users.get_by_email.return_value = self.user
        self.users.get_by_username.return_value = self.user
        self.passwords.verify.return_value = True
        self.passwords.needs_rehash.return_value = False
        self.tokens.issue.return_value = TOKENS

    def test_login_when_email_and_password_match_issues_fresh_tokens(self):
        result = self.service.login("pw", email=" ADA@example.com")

        self.assertIs(result, TOKENS)
        self.users.get_by_email.assert_called_once_with("ada@example.com")
        self.passwords.verify.assert_called_once_with("$h", "pw")
        self.tokens.issue.assert_called_once_with(self.user, fresh=True)

    def test_login_when_username_given_looks_up_normalised_username(self):
        self.service.login("pw", username="Ada")

        self.users.get_by_username.assert_called_once_with("ada")
        self.users.get_by_email.assert_not_called()

    def test_login_when_user_unknown_verifies_dummy_and_raises(self):
        self.users.get_by_email.return_value = None

        with self.assertRaises(InvalidCredentials) as caught:
            self.service.login("pw", email="nobody@example.com")

        self.assertEqual(caught.exception.detail, "Invalid credentials")
        self.passwords.verify_dummy.assert_called_once_with("pw")
        self.tokens.issue.assert_not_called()

    def test_login_when_password_wrong_raises_invalid_credentials(self):
        self.passwords.verify.return_value = False

        with self.assertRaises(InvalidCredentials):
            self.service.login("wrong", email="ada@example.com")

        self.tokens.issue.assert_not_called()

    def test_login_when_account_inactive_still_verifies_then_raises(self):
        self.user.is_active = False

        with self.assertRaises(InvalidCredentials):
            self.service.login("pw", email="ada@example.com")

        # The hash is checked anyway: an inactive account costs what any other does.
        self.passwords.verify.assert_called_once_with("$h", "pw")
        self.tokens.issue.assert_not_called()

    def test_login_when_no_identifier_raises_invalid_credentials(self):
        with self.assertRaises(InvalidCredentials):
            self.service.login("pw")

        self.tokens.issue.assert_not_called()

    def test_login_when_hash_parameters_outdated_rehashes_and_saves(self):
        self.passwords.needs_rehash.return_value = True
        self.passwords.hash.return_value = "$new"

        self.service.login("pw", email="ada@example.com")

        self.assertEqual(self.user.password_hash, "$new")
        self.users.save.assert_called_once_with(self.user)

    def test_login_when_hash_current_saves_nothing(self):
        self.service.login("pw", email="ada@example.com")

        self.users.save.assert_not_called()
