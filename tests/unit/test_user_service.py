from __future__ import annotations

import unittest
from unittest import mock

from myapp.errors import NotFound
from myapp.users.models import User
from myapp.users.repository import UserRepository
from myapp.users.service import UserService


class TestUserServiceGet(unittest.TestCase):
    def setUp(self) -> None:
        self.users = mock.create_autospec(UserRepository, instance=True)
        self.service = UserService(self.users)

    def test_get_when_user_exists_returns_it(self):
        user = User(id=3, email="a@example.com", username="a")
        self.users.get.return_value = user

        self.assertIs(self.service.get(3), user)
        self.users.get.assert_called_once_with(3)

    def test_get_when_user_missing_raises_not_found(self):
        self.users.get.return_value = None

        with self.assertRaises(NotFound) as caught:
            self.service.get(3)

        self.assertEqual(caught.exception.status, 404)
