"""User rules. No Flask request objects here."""

from __future__ import annotations

from myapp.errors import NotFound
from myapp.users.models import User
from myapp.users.repository import UserRepository


class UserService:
    def __init__(self, users: UserRepository) -> None:
        self.users = users

    def get(self, user_id: int) -> User:
        user = self.users.get(user_id)
        if user is None:
            raise NotFound("User not found.")
        return user
