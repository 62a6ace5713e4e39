"""Authentication rules: registration, login, sessions and their tokens.

No Flask request objects here: callers pass plain data (and ``ClientInfo``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from myapp.auth.account import AccountService
from myapp.audit import audit
from myapp.auth.models import AuthSession
from myapp.auth.repository import SessionRepository
from myapp.auth.tokens import TokenPair, TokenService
from myapp.database import utcnow
from myapp.errors import Conflict, NotFound, Unauthorized
from myapp.passwords import PasswordHasher
from myapp.users.models import User, normalise_email, normalise_username
from myapp.users.repository import DuplicateUserError, UserRepository


class InvalidCredentials(Unauthorized):
    # One message for unknown user, wrong password and inactive account alike, so
    # the answer never tells an attacker which accounts exist.
    detail = "Invalid credentials"


class RefreshTokenReused(Unauthorized):
    detail = "Refresh token reuse detected: the session has been revoked. Log in again."


class RefreshTokenSpent(Unauthorized):
    detail = "Refresh token already used."


@dataclass(frozen=True)
class ClientInfo:
    """Who is logging in, as far as the HTTP layer can tell."""

    user_agent: str | None = None
    ip: str | None = None


def new_jti() -> str:
    return str(uuid.uuid4())


class AuthService:
    def __init__(
        self,
        users: UserRepository,
        sessions: SessionRepository,
        passwords: PasswordHasher,
        tokens: TokenService,
        account: AccountService,
        *,
        session_lifetime: timedelta,
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.passwords = passwords
        self.tokens = tokens
        self.account = account
        # A session lives as long as its refresh token; each rotation extends it.
        self.session_lifetime = session_lifetime

    def register(self, email: str, username: str, password: str) -> User:
        email, username = normalise_email(email), normalise_username(username)
        email_taken, username_taken = self.users.find_conflicts(email, username)
        if email_taken:
            raise Conflict("An account with this email already exists.")
        if username_taken:
            raise Conflict("This username is taken.")
        user = User(email=email, username=username, password_hash=self.passwords.hash(password))
        try:
            self.users.add(user)
        except DuplicateUserError:
            # Lost a race with a concurrent registration of the same email/username.
            raise Conflict("An account with this email or username already exists.") from None
        self.account.send_verification(user)
        return user

    def authenticate(
        self, password: str, *, email: str | None = None, username: str | None = None
    ) -> User:
        """The active user these credentials belong to, or ``InvalidCredentials``."""
        if email is not None:
            user = self.users.find_for_login(email=normalise_email(email))
        elif username is not None:
            user = self.users.find_for_login(username=normalise_username(username))
        else:
            raise InvalidCredentials()
        if user is None:
            # Same cost as a real check: response time must not reveal unknown users.
            self.passwords.verify_dummy(password)
            audit("login.failed", reason="unknown_user")
            raise InvalidCredentials()
        if not self.passwords.verify(user.password_hash, password):
            audit("login.failed", user_id=user.id, reason="wrong_password")
            raise InvalidCredentials()
        if not user.is_active:
            audit("login.failed", user_id=user.id, reason="inactive")
            raise InvalidCredentials()
        if self.passwords.needs_rehash(user.password_hash):
            # Parameters were raised since this hash was made: upgrade it now that
            # we hold the plain password.
            user.password_hash = self.passwords.hash(password)
            self.users.save(user)
        return user

    def login(
        self,
        password: str,
        *,
        email: str | None = None,
        username: str | None = None,
        client: ClientInfo = ClientInfo(),
    ) -> TokenPair:
        user = self.authenticate(password, email=email, username=username)
        now = utcnow()
        auth_session = self.sessions.create(
            AuthSession(
                user_id=user.id,
                refresh_jti=new_jti(),
                created_at=now,
                last_used_at=now,
                expires_at=now + self.session_lifetime,
                user_agent=client.user_agent,
                ip=client.ip,
            )
        )
        audit("login.succeeded", user_id=user.id, session_id=auth_session.id)
        return self.tokens.issue(user, auth_session, fresh=True)

    def refresh(self, user: User, session_id: str, jti: str) -> TokenPair:
        """Rotate: spend refresh token ``jti`` of the session, return a new pair.

        A token that was already spent when it arrives is reuse (a stolen copy, or a
        client replaying): the whole family is revoked. Of two concurrent refreshes
        with the current token, the loser of the swap only gets a 401: its token was
        valid when it arrived, so nothing proves theft.
        """
        auth_session = self.sessions.get(session_id)
        now = utcnow()
        if auth_session is None or auth_session.refresh_jti != jti:
            self.sessions.revoke(session_id, now)
            audit("refresh.reuse_detected", user_id=user.id, session_id=session_id)
            raise RefreshTokenReused()
        replacement = new_jti()
        expires_at = now + self.session_lifetime
        if not self.sessions.rotate(session_id, jti, replacement, now, expires_at):
            raise RefreshTokenSpent()
        auth_session = self.sessions.get(session_id)
        return self.tokens.issue(user, auth_session, fresh=False)

    def logout(self, user: User, session_id: str) -> None:
        self.sessions.revoke(session_id, utcnow())
        audit("logout", user_id=user.id, session_id=session_id)

    def logout_everywhere(self, user: User) -> None:
        # The version bump kills every token ever issued; revoking the rows also
        # empties the session list.
        user.token_version += 1
        self.sessions.revoke_all(user.id, utcnow())
        self.users.save(user)
        audit("logout.all", user_id=user.id)

    def list_sessions(self, user: User) -> list[AuthSession]:
        return self.sessions.list_active(user.id, utcnow())

    def revoke_session(self, user: User, session_id: str) -> None:
        now = utcnow()
        if self.sessions.get_active_for_user(session_id, user.id, now) is None:
            # Another user's session is "not found", never "forbidden": no oracle.
            raise NotFound("Session not found.")
        self.sessions.revoke(session_id, now)
        audit("session.revoked", user_id=user.id, session_id=session_id)
