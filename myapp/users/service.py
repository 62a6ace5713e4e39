"""User rules: profiles, the password, self-service deletion, administration.

No Flask request objects here: callers pass plain, normalised data. Each public
method that writes is one use case: its writes happen inside ``with self.uow:``,
which commits once at its end or rolls everything back. What other domains do
about a change (end sessions, prove a new address) they do through
``AccountEvents``, inside that same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from flask import current_app
from sqlalchemy.engine import Row

from myapp.audit import audit
from myapp.database.unit_of_work import UnitOfWork
from myapp.errors import AppError, Conflict, Forbidden, NotFound
from myapp.extensions import passwords
from myapp.outbox.compose import compose
from myapp.outbox.service import Outbox
from myapp.passwords import PasswordHasher
from myapp.users.events import AccountEvents, listener_of
from myapp.users.models import User
from myapp.users.repository import DuplicateUserError, UserRepository, UserSearch


class WrongPassword(Forbidden):
    detail = "The current password is incorrect."


class InvalidEmailChangeToken(AppError):
    status = HTTPStatus.BAD_REQUEST
    detail = "The token is invalid, expired or already used."


class SelfLockout(Conflict):
    # The last administrator must not be able to lock everyone out; an admin who
    # wants to step down asks another admin.
    detail = "Administrators cannot deactivate, demote or delete their own account."


@dataclass(frozen=True)
class UserPage:
    items: list[Row[Any]]  # read-only rows with a User's attributes (UserRepository.search)
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
        passwords: PasswordHasher,
        events: AccountEvents,
        outbox: Outbox,
        uow: UnitOfWork,
    ) -> None:
        self.users = users
        self.passwords = passwords
        self.events = events
        self.outbox = outbox
        self.uow = uow

    @classmethod
    def from_app(cls) -> UserService:
        """The service wired for the current app (what routes and commands call)."""
        return cls(
            UserRepository(), passwords, listener_of(current_app), Outbox.from_app(), UnitOfWork()
        )

    def get(self, user_id: int) -> User:
        user = self.users.get(user_id)
        if user is None:
            raise NotFound("User not found.")
        return user

    def find_by_email(self, email: str) -> User | None:
        return self.users.get_by_email(email)

    def search(self, criteria: UserSearch) -> UserPage:
        items, total = self.users.search(criteria)
        return UserPage(items, total, criteria.page, criteria.per_page)

    # -- self-service -------------------------------------------------------
    def update_profile(self, user: User, changes: dict[str, Any]) -> User:
        """Change the user's own username now; a new email address only once a link
        sent there proves it (``user.pending_email`` until then)."""
        changes = dict(changes)
        new_email = changes.pop("email", None)
        if new_email == user.email:
            new_email = None  # nothing to prove
        with self.uow:
            if new_email is not None:
                self._check_free(new_email, None, user)
            self._apply(user, changes)
            if new_email is not None:
                # A later request replaces a pending one; its link stops working
                # (the link is bound to both addresses).
                user.pending_email = new_email
                self.users.save(user)
                self.events.email_change_requested(user)
        return user

    def confirm_email_change(self, token: str) -> User:
        """Move the account to the address the token proves: verified, the old
        address told, every session ended."""
        with self.uow:
            user = self.events.redeem_email_change(token)
            if user is None or user.pending_email is None:
                raise InvalidEmailChangeToken()
            new_email, old_email = user.pending_email, user.email
            # Taken meanwhile (registered, or given by an administrator): nothing
            # changes, the token included (the unit of work rolls back its use).
            self._check_free(new_email, None, user)
            user.email, user.pending_email, user.is_verified = new_email, None, True
            try:
                self.users.save(user)
            except DuplicateUserError:
                raise Conflict("An account with this email already exists.") from None
            self.events.email_change_confirmed(user)
            self._tell_old_address(old_email, user)
        audit("email.changed", user_id=user.id)
        return user

    def change_password(
        self, user: User, current_password: str, new_password: str, *, keep_session: str
    ) -> None:
        """Set a new password; every other session ends (``keep_session`` goes on)."""
        if not self.passwords.verify(user.password_hash, current_password):
            raise WrongPassword()
        new_hash = self.passwords.hash(new_password)  # before the transaction starts
        with self.uow:
            user.password_hash = new_hash
            self.users.save(user)
            self.events.password_changed(user, keep_session=keep_session)
            self.outbox.queue(
                user.email,
                compose(
                    "Your password was changed",
                    [
                        "The password of your account was changed, and every other session "
                        "was signed out.",
                        "If it was not you, reset your password at once with the "
                        "'forgot password' link: this address can still recover the account.",
                    ],
                ),
                kind="password_changed",
            )
        audit("password.changed", user_id=user.id)

    def delete_account(self, user: User, password: str) -> None:
        if not self.passwords.verify(user.password_hash, password):
            raise WrongPassword("The password is incorrect.")
        user_id, address = user.id, user.email
        with self.uow:
            self.users.delete(user)
            self.outbox.queue(
                address,
                compose(
                    "Your account was deleted",
                    [
                        "Your account and everything it held were deleted at your request; "
                        "every session was signed out.",
                        "If it was not you, someone had your password: this address can "
                        "register again, and nothing of the old account remains.",
                    ],
                ),
                kind="account_deleted",
            )
        audit("account.deleted", user_id=user_id)

    # -- administration -----------------------------------------------------
    def admin_update(self, actor: User, user_id: int, changes: dict[str, Any]) -> User:
        with self.uow:
            user = self.get(user_id)
            if user.id == actor.id and (
                changes.get("is_active") is False or changes.get("is_admin") is False
            ):
                raise SelfLockout()
            self._apply(user, changes)
        audit("admin.user_updated", user_id=user.id, actor_id=actor.id, fields=sorted(changes))
        return user

    def admin_delete(self, actor: User, user_id: int) -> None:
        with self.uow:
            user = self.get(user_id)
            if user.id == actor.id:
                raise SelfLockout()
            self.users.delete(user)
        audit("admin.user_deleted", user_id=user_id, actor_id=actor.id)

    def promote(self, user: User) -> None:
        """Make the user an administrator (``flask create-admin --promote``)."""
        with self.uow:
            user.is_admin = True
            self.users.save(user)

    # -- bulk loading (flask seed-users) --------------------------------------
    def insert_many(self, rows: list[dict[str, Any]]) -> None:
        """Insert prepared user rows in one statement and one transaction."""
        with self.uow:
            self.users.insert_many(rows)

    def after_bulk_load(self) -> None:
        """Make a freshly loaded table fast to query: planner statistics, and on
        PostgreSQL a visibility map."""
        with self.uow:
            self.users.refresh_planner_statistics()
        self.users.vacuum()  # VACUUM cannot run inside a transaction

    # -- shared -------------------------------------------------------------
    def _apply(self, user: User, changes: dict[str, Any]) -> None:
        """Apply a PATCH body's changes (already normalised by the schema)."""
        email: str | None = changes.get("email")
        username: str | None = changes.get("username")
        self._check_free(email, username, user)

        old_email = None
        if email is not None and email != user.email:
            old_email = user.email
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
        try:
            self.users.save(user)
        except DuplicateUserError:
            raise Conflict("An account with this email or username already exists.") from None
        if lose_access or lose_rights:
            self.events.access_lost(user)
        if old_email is not None:
            user.pending_email = None  # an administrator's change supersedes a request
            self.events.email_changed(user)
            self._tell_old_address(old_email, user)

    def _check_free(self, email: str | None, username: str | None, user: User) -> None:
        email_taken, username_taken = self.users.find_conflicts(email, username, exclude_id=user.id)
        if email_taken:
            raise Conflict("An account with this email already exists.")
        if username_taken:
            raise Conflict("This username is taken.")

    def _tell_old_address(self, old_email: str, user: User) -> None:
        self.outbox.queue(
            old_email,
            compose(
                "The email address of your account was changed",
                [
                    f"The email address of your account was changed to {user.email}. "
                    "Reset links now go there, not here.",
                    "If it was not you, reply to this email or contact support at once: "
                    "this message is your proof that the account used this address.",
                ],
            ),
            kind="email_changed",
        )
