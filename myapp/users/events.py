"""How other domains take part in users' use cases, without users importing them.

Dependencies between domains go one way: auth uses users, users never imports
auth. Yet some user changes must reach auth: a changed password or lost access
ends sessions, a new email address needs proving. So users announces those
changes through ``AccountEvents``, and the app connects auth's implementation
(``app.connect_domains``). The announcement runs inside the announcing use case's
transaction, before its one commit: what a listener writes lands with the change,
or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from flask import Flask

from myapp.users.models import User

EXTENSION_KEY = "myapp.users.events"


class AccountEvents(Protocol):
    def password_changed(self, user: User, *, keep_session: str | None) -> None:
        """The user set a new password from the session ``keep_session``."""

    def access_lost(self, user: User) -> None:
        """The user was deactivated or lost administrator rights."""

    def email_changed(self, user: User) -> None:
        """An administrator changed the user's address (``user.email`` is the new
        one, unproven)."""

    def email_change_requested(self, user: User) -> None:
        """The user asked to move to ``user.pending_email``: it needs proving."""

    def redeem_email_change(self, token: str) -> User | None:
        """The user whose pending address ``token`` proves (using the token up), or
        None for a bad, used or expired token."""

    def email_change_confirmed(self, user: User) -> None:
        """``user.email`` is now the address the user proved."""


class NoListener:
    """What users does alone (no other domain connected): nothing more."""

    def password_changed(self, user: User, *, keep_session: str | None) -> None:
        pass

    def access_lost(self, user: User) -> None:
        pass

    def email_changed(self, user: User) -> None:
        pass

    def email_change_requested(self, user: User) -> None:
        pass

    def redeem_email_change(self, token: str) -> User | None:
        return None  # nothing issues such tokens, so none is valid

    def email_change_confirmed(self, user: User) -> None:
        pass


def connect(app: Flask, listener: Callable[[], AccountEvents]) -> None:
    """Make ``listener()`` (built per use case, for the current app) hear the events."""
    app.extensions[EXTENSION_KEY] = listener


def listener_of(app: Flask) -> AccountEvents:
    factory: Callable[[], AccountEvents] = app.extensions.get(EXTENSION_KEY, NoListener)
    return factory()
