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
from myapp.errors import NotFound, TooManyRequests, Unauthorized
from myapp.extensions import passwords
from myapp.passwords import PasswordHasher
from myapp.ratelimit import Budget
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


class SessionExpired(Unauthorized):
    detail = "The session has reached its maximum lifetime. Log in again."


@dataclass(frozen=True)
class Credential:
    """What a password was checked against: if either changes before the session
    is stored, the password no longer opens one."""

    password_hash: str
    token_version: int


@dataclass(frozen=True)
class ClientInfo:
    """Who is logging in, as far as the HTTP layer can tell."""

    user_agent: str | None = None
    ip: str | None = None


FAILED_LOGINS_MESSAGE = "Too many failed logins for this account; try again later."


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
        failed_logins: Budget,
        *,
        session_lifetime: timedelta,
        session_absolute_lifetime: timedelta,
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.passwords = passwords
        self.tokens = tokens
        self.uow = uow
        # Wrong passwords checked per account and window, whatever the concurrency.
        self.failed_logins = failed_logins
        # A session lives as long as its refresh token (idle lifetime): each rotation
        # extends it, but never past its login plus the absolute lifetime.
        self.session_lifetime = session_lifetime
        self.session_absolute_lifetime = session_absolute_lifetime

    @classmethod
    def from_app(cls) -> AuthService:
        """The service wired for the current app (what routes call)."""
        config = current_app.config
        return cls(
            UserRepository(),
            SessionRepository(),
            passwords,
            TokenService(),
            UnitOfWork(),
            Budget.of(current_app, "RATELIMIT_LOGIN_FAILURES", FAILED_LOGINS_MESSAGE),
            session_lifetime=config["JWT_REFRESH_TOKEN_EXPIRES"],
            session_absolute_lifetime=timedelta(seconds=config["SESSION_ABSOLUTE_LIFETIME"]),
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
        user, credential, new_hash = self._authenticate(password, email=email, username=username)
        now = utcnow()
        auth_session = AuthSession(
            user_id=user.id,
            refresh_jti=new_jti(),
            created_at=now,
            last_used_at=now,
            expires_at=now + min(self.session_lifetime, self.session_absolute_lifetime),
            user_agent=client.user_agent,
            ip=client.ip,
        )
        with self.uow:
            # A password change or reset that landed while the password was being
            # checked wins: the old password must not open a session after it.
            if not self.sessions.create_if_unchanged(
                auth_session, credential.password_hash, credential.token_version
            ):
                audit("login.failed", user_id=user.id, reason="credential_changed")
                raise InvalidCredentials()
            if new_hash is not None:
                user.password_hash = new_hash
                self.users.save(user)
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
            else:
                deadline = auth_session.created_at + self.session_absolute_lifetime
                if deadline <= now:
                    raise SessionExpired()
                expires_at = min(now + self.session_lifetime, deadline)
                if self.sessions.rotate(session_id, jti, new_jti(), now, expires_at):
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
    ) -> tuple[User, Credential, str | None]:
        """The active user these credentials belong to, the credential the password
        was checked against, and a new hash when the stored one is outdated; or
        ``InvalidCredentials``, or ``TooManyRequests`` once the account's budget of
        wrong passwords is spent.

        Reads outside any transaction and writes nothing, so none is open during
        the hash.
        """
        if email is not None:
            user = self.users.find_for_login(email=email)
        elif username is not None:
            user = self.users.find_for_login(username=username)
        else:
            raise InvalidCredentials()
        # Per account, whichever identifier was typed; an unknown one has its own
        # budget, so a 429 never tells whether an account exists.
        budget_key = f"user:{user.id}" if user is not None else f"unknown:{email or username}"
        # Spent before the check (an atomic increment): however many guesses race,
        # at most the budget's worth of passwords are checked.
        try:
            self.failed_logins.spend(budget_key)
        except TooManyRequests:
            audit("login.throttled", user_id=user.id if user is not None else None)
            raise
        if user is None:
            # Same cost as a real check: response time must not reveal unknown users.
            self.passwords.verify_dummy(password)
            audit("login.failed", reason="unknown_user")
            raise InvalidCredentials()
        credential = Credential(user.password_hash, user.token_version)
        if not self.passwords.verify(credential.password_hash, password):
            audit("login.failed", user_id=user.id, reason="wrong_password")
            raise InvalidCredentials()
        # The right password costs nothing: the owner's own logins never lock them out.
        self.failed_logins.refund(budget_key)
        if not user.is_active:
            audit("login.failed", user_id=user.id, reason="inactive")
            raise InvalidCredentials()
        new_hash = None
        if self.passwords.needs_rehash(credential.password_hash):
            # Parameters were raised since this hash was made: upgrade it now that
            # we hold the plain password.
            new_hash = self.passwords.hash(password)
        return user, credential, new_hash
