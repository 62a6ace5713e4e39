"""Signing in and sessions: login, refresh rotation, logout, the session list.

No Flask request objects here: callers pass plain, normalised data (and
``ClientInfo``). Each public method is one use case: its writes happen inside
``with self.uow:``, which commits once at its end or rolls everything back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from myapp.audit import audit
from myapp.auth.models import AuthSession
from myapp.auth.repository import SessionRepository
from myapp.auth.tokens import TokenPair, TokenService
from myapp.database.columns import utcnow
from myapp.database.unit_of_work import UnitOfWork
from myapp.errors import NotFound, Unauthorized
from myapp.extensions import passwords
from myapp.passwords import PasswordHasher
from myapp.users.models import User
from myapp.users.repository import UserRepository


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
        uow: UnitOfWork,
        *,
        session_lifetime: timedelta,
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.passwords = passwords
        self.tokens = tokens
        self.uow = uow
        # A session lives as long as its refresh token; each rotation extends it.
        self.session_lifetime = session_lifetime

    @classmethod
    def from_app(cls) -> AuthService:
        """The service wired for the current app (what routes call)."""
        return cls(
            UserRepository(),
            SessionRepository(),
            passwords,
            TokenService(),
            UnitOfWork(),
            session_lifetime=current_app.config["JWT_REFRESH_TOKEN_EXPIRES"],
        )

    def login(
        self,
        password: str,
        *,
        email: str | None = None,
        username: str | None = None,
        client: ClientInfo = ClientInfo(),
    ) -> TokenPair:
        """Check the credentials, start a session, issue a fresh token pair."""
        with self.uow:
            user = self._authenticate(password, email=email, username=username)
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
            # Inside the transaction: a session nobody got tokens for must not remain.
            tokens = self.tokens.issue(user, auth_session, fresh=True)
        audit("login.succeeded", user_id=user.id, session_id=auth_session.id)
        return tokens

    def refresh(self, user: User, session_id: str, jti: str) -> TokenPair:
        """Rotate: spend refresh token ``jti`` of the session, return a new pair.

        A token that was already spent when it arrives is reuse (a stolen copy, or a
        client replaying): the whole family is revoked, and that revocation is the
        use case's outcome, committed before the 401. Of two concurrent refreshes
        with the current token, the loser of the swap only gets a 401: its token was
        valid when it arrived, so nothing proves theft.
        """
        now = utcnow()
        reused, tokens = False, None
        with self.uow:
            auth_session = self.sessions.get(session_id)
            if auth_session is None or auth_session.refresh_jti != jti:
                reused = True
                self.sessions.revoke(session_id, now)
            elif self.sessions.rotate(session_id, jti, new_jti(), now, now + self.session_lifetime):
                tokens = self.tokens.issue(user, auth_session, fresh=False)
        if reused:
            audit("refresh.reuse_detected", user_id=user.id, session_id=session_id)
            raise RefreshTokenReused()
        if tokens is None:
            raise RefreshTokenSpent()
        return tokens

    def logout(self, user: User, session_id: str) -> None:
        with self.uow:
            self.sessions.revoke(session_id, utcnow())
        audit("logout", user_id=user.id, session_id=session_id)

    def logout_everywhere(self, user: User) -> None:
        # The version bump kills every token ever issued; revoking the rows also
        # empties the session list.
        with self.uow:
            user.token_version += 1
            self.sessions.revoke_all(user.id, utcnow())
            self.users.save(user)
        audit("logout.all", user_id=user.id)

    def list_sessions(self, user: User) -> list[AuthSession]:
        return self.sessions.list_active(user.id, utcnow())

    def revoke_session(self, user: User, session_id: str) -> None:
        now = utcnow()
        with self.uow:
            if self.sessions.get_active_for_user(session_id, user.id, now) is None:
                # Another user's session is "not found", never "forbidden": no oracle.
                raise NotFound("Session not found.")
            self.sessions.revoke(session_id, now)
        audit("session.revoked", user_id=user.id, session_id=session_id)

    def _authenticate(
        self, password: str, *, email: str | None = None, username: str | None = None
    ) -> User:
        """The active user these credentials belong to, or ``InvalidCredentials``.

        The lookup reads outside the transaction and nothing is written before the
        hash is checked, so no transaction is open during the hash.
        """
        if email is not None:
            user = self.users.find_for_login(email=email)
        elif username is not None:
            user = self.users.find_for_login(username=username)
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
