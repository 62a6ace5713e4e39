"""Auth's part in users' use cases (users announces them: ``users/events.py``):
sessions end when the password changes, access is lost or the address moves; a
new email address gets a link that proves it. Runs inside the announcing use
case's transaction."""

from __future__ import annotations

from myapp.auth.account import AccountService
from myapp.auth.repository import SessionRepository
from myapp.database.columns import utcnow
from myapp.users.models import User


class SessionsAndVerification:
    """Implements ``myapp.users.events.AccountEvents``."""

    def __init__(self, sessions: SessionRepository, account: AccountService) -> None:
        self.sessions = sessions
        self.account = account

    @classmethod
    def from_app(cls) -> SessionsAndVerification:
        return cls(SessionRepository(), AccountService.from_app())

    def password_changed(self, user: User, *, keep_session: str | None) -> None:
        # Whoever else holds a session (perhaps the reason for the change) is out.
        self.sessions.revoke_all(user.id, utcnow(), keep=keep_session)

    def access_lost(self, user: User) -> None:
        # The token_version bump already refuses every token; revoking the rows
        # also empties the user's session list.
        self.sessions.revoke_all(user.id, utcnow())

    def email_changed(self, user: User) -> None:
        self.account.queue_verification(user)

    def email_change_requested(self, user: User) -> None:
        self.account.queue_email_change(user)

    def redeem_email_change(self, token: str) -> User | None:
        return self.account.redeem_email_change(token)

    def email_change_confirmed(self, user: User) -> None:
        # Whoever held a session may have been the reason for the move: all end.
        self.sessions.revoke_all(user.id, utcnow())
