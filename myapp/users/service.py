"""User rules: profiles, self-service deletion, administration. No Flask request
objects here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Row

from myapp.audit import audit
from myapp.auth.account import AccountService, WrongPassword
from myapp.auth.repository import SessionRepository
from myapp.database import utcnow
from myapp.errors import Conflict, NotFound
from myapp.passwords import PasswordHasher
from myapp.users.models import User, normalise_email, normalise_username
from myapp.users.repository import DuplicateUserError, UserRepository, UserSearch


class SelfLockout(Conflict):
    # The last administrator must not be able to lock everyone out; an admin who
    # wants to step down asks another admin.
    detail = "Administrators cannot deactivate, demote or delete their own account."


@dataclass(frozen=True)
class UserPage:
    items: list[Row]  # read-only rows with a User's attributes (UserRepository.search)
    total: int
    page: int
    per_page: int

    @property
    def total_pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


class UserService:
    def __init__(
        self,
        users: UserRepository,
        sessions: SessionRepository,
        passwords: PasswordHasher,
        account: AccountService,
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.passwords = passwords
        self.account = account

    def get(self, user_id: int) -> User:
        user = self.users.get(user_id)
        if user is None:
            raise NotFound("User not found.")
        return user

    def search(self, criteria: UserSearch) -> UserPage:
        items, total = self.users.search(criteria)
        return UserPage(items, total, criteria.page, criteria.per_page)

    # -- self-service -------------------------------------------------------
    def update_profile(self, user: User, changes: dict[str, Any]) -> User:
        """Change the user's own email and/or username."""
        return self._apply(user, changes)

    def delete_account(self, user: User, password: str) -> None:
        if not self.passwords.verify(user.password_hash, password):
            raise WrongPassword("The password is incorrect.")
        user_id = user.id
        self.users.delete(user)
        audit("account.deleted", user_id=user_id)

    # -- administration -----------------------------------------------------
    def admin_update(self, actor: User, user_id: int, changes: dict[str, Any]) -> User:
        user = self.get(user_id)
        if user.id == actor.id and (
            changes.get("is_active") is False or changes.get("is_admin") is False
        ):
            raise SelfLockout()
        self._apply(user, changes)
        audit("admin.user_updated", user_id=user.id, actor_id=actor.id, fields=sorted(changes))
        return user

    def admin_delete(self, actor: User, user_id: int) -> None:
        user = self.get(user_id)
        if user.id == actor.id:
            raise SelfLockout()
        self.users.delete(user)
        audit("admin.user_deleted", user_id=user_id, actor_id=actor.id)

    # -- shared -------------------------------------------------------------
    def _apply(self, user: User, changes: dict[str, Any]) -> User:
        email = normalise_email(changes["email"]) if "email" in changes else None
        username = normalise_username(changes["username"]) if "username" in changes else None
        email_taken, username_taken = self.users.find_conflicts(
            email, username, exclude_id=user.id
        )
        if email_taken:
            raise Conflict("An account with this email already exists.")
        if username_taken:
            raise Conflict("This username is taken.")

        email_changed = email is not None and email != user.email
        if email_changed:
            user.email = email
            user.is_verified = False  # the new address is unproven
        if username is not None:
            user.username = username
        # Losing access or rights takes effect now, not when tokens expire.
        lose_access = changes.get("is_active") is False and user.is_active
        lose_rights = changes.get("is_admin") is False and user.is_admin
        for flag in ("is_active", "is_admin"):
            if flag in changes:
                setattr(user, flag, changes[flag])
        if lose_access or lose_rights:
            user.token_version += 1
            self.sessions.revoke_all(user.id, utcnow())
        try:
            self.users.save(user)
        except DuplicateUserError:
            raise Conflict("An account with this email or username already exists.") from None
        if email_changed:
            self.account.send_verification(user)
        return user
