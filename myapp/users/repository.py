"""All database access for users lives here."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from myapp.extensions import db
from myapp.users.models import User

# Largest value of the INTEGER primary key on every supported database; larger ids
# cannot exist, and PostgreSQL would raise on the comparison instead of finding none.
MAX_ID = 2**31 - 1


class DuplicateUserError(Exception):
    """The database refused a user whose email or username already exists."""


class UserRepository:
    def __init__(self, session: Session | None = None) -> None:
        self.session = session if session is not None else db.session

    def get(self, user_id: int) -> User | None:
        if not 0 < user_id <= MAX_ID:
            return None
        return self.session.get(User, user_id)

    def get_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email))

    def get_by_username(self, username: str) -> User | None:
        return self.session.scalar(select(User).where(User.username == username))

    def find_conflicts(self, email: str, username: str) -> tuple[bool, bool]:
        """(email taken, username taken) in one query; inputs must be normalised."""
        rows = self.session.execute(
            select(User.email, User.username).where(
                or_(User.email == email, User.username == username)
            )
        ).all()
        return (
            any(row.email == email for row in rows),
            any(row.username == username for row in rows),
        )

    def add(self, user: User) -> User:
        """Insert and commit; ``DuplicateUserError`` if a unique constraint refuses it.

        The constraint is the real guard: two concurrent registrations can both pass
        a prior existence check, and only one insert may win.
        """
        self.session.add(user)
        try:
            self.session.commit()
        except IntegrityError as error:
            self.session.rollback()
            raise DuplicateUserError(str(error.orig)) from error
        return user

    def save(self, user: User) -> User:
        """Commit changes made to a loaded user."""
        self.session.add(user)
        self.session.commit()
        return user
