"""Signing in and sessions: login, refresh rotation, logout, the session list.

No Flask request objects here: callers pass plain, normalised data (and
``ClientInfo``). Each public method is one use case: its writes happen inside
``with self.uow:``, which commits once at its end or rolls everything back.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from webauthn.helpers.structs import AuthenticationCredential

from myapp.audit import audit
from myapp.auth.account import TOKEN_BYTES, digest
from myapp.auth.mfa import CodeRequired, Proof, SecondFactors, WrongCode
from myapp.auth.models import AuthSession, MfaChallenge, WebAuthnCeremony
from myapp.auth.passkeys import PASSKEY, NoPasskey, Passkeys
from myapp.auth.relying_party import Answer
from myapp.auth.repository import MfaRepository, SessionRepository
from myapp.auth.tokens import AccessToken, TokenPair, TokenService
from myapp.database.columns import utcnow
from myapp.database.unit_of_work import UnitOfWork
from myapp.errors import NotFound, TooManyRequests, Unauthorized
from myapp.extensions import passwords
from myapp.passwords import PasswordHasher
from myapp.ratelimit import Budget
from myapp.users.models import User
from myapp.users.repository import UserRepository
from myapp.users.service import WrongPassword


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


class InvalidMfaToken(Unauthorized):
    detail = "The mfa_token is invalid, expired or used up. Log in again."


class InvalidCode(Unauthorized):
    detail = "Invalid code."


class PasskeySignInFailed(Unauthorized):
    # One answer for every failure: which check failed is for the audit log only.
    detail = "The passkey could not be verified. Ask for new options and try again."


@dataclass(frozen=True)
class MfaRequired:
    """A right password of an account with a second factor: the login's answer
    until ``complete_login`` gets the code."""

    mfa_token: str
    methods: list[str] = field(default_factory=list)
    mfa_required: bool = True


@dataclass(frozen=True)
class MfaSettings:
    token_lifetime: timedelta
    max_attempts: int


def challenge_binding(user: User) -> str:
    """What an mfa_token is about: the password just checked and the token
    version; a password change, reset or sign-out everywhere kills it."""
    return f"{user.password_hash}\n{user.token_version}"


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
        factors: SecondFactors,
        *,
        session_lifetime: timedelta,
        session_absolute_lifetime: timedelta,
        mfa: MfaSettings,
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.passwords = passwords
        self.tokens = tokens
        self.uow = uow
        # Wrong passwords checked per account and window, whatever the concurrency.
        self.failed_logins = failed_logins
        self.factors = factors
        self.passkeys: Passkeys = factors.passkeys
        self.challenges: MfaRepository = factors.repository
        self.mfa = mfa
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
            SecondFactors.from_app(),
            session_lifetime=config["JWT_REFRESH_TOKEN_EXPIRES"],
            session_absolute_lifetime=timedelta(seconds=config["SESSION_ABSOLUTE_LIFETIME"]),
            mfa=MfaSettings(
                token_lifetime=timedelta(seconds=config["MFA_TOKEN_EXPIRES"]),
                max_attempts=config["MFA_TOKEN_MAX_ATTEMPTS"],
            ),
        )

    def login(
        self,
        password: str,
        *,
        email: str | None = None,
        username: str | None = None,
        client: ClientInfo = ClientInfo(),
    ) -> TokenPair | MfaRequired:
        """Check the credentials, start a session, issue a fresh token pair; or,
        for an account with a second factor, the mfa_token of the second step."""
        user, credential, new_hash = self._authenticate(password, email=email, username=username)
        if user.is_mfa_enabled:
            return self._challenge(user, new_hash)
        auth_session = self._new_session(user, client)
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

    def complete_login(
        self, mfa_token: str, proof: Proof, *, client: ClientInfo = ClientInfo()
    ) -> TokenPair:
        """The second step: a code for the mfa_token's user starts the session.

        A wrong code counts against the token (dead after ``max_attempts``) and
        against the account's budget of wrong codes; that count is the use case's
        outcome, committed before the 401.
        """
        now = utcnow()
        tokens, method = None, None
        with self.uow:
            challenge = self.challenges.get_challenge(digest(mfa_token))
            user = self.users.get(challenge.user_id) if challenge is not None else None
            if challenge is None or user is None or not self._alive(challenge, user, now):
                raise InvalidMfaToken()
            method = self.factors.check(user, proof, self.uow)
            if method is None:
                self.challenges.count_failure(challenge.id)
            else:
                # Single use: of two requests with one token, one gets a session.
                if not self.challenges.consume_challenge(challenge.id, now, self.mfa.max_attempts):
                    raise InvalidMfaToken()
                auth_session = self._new_session(user, client)
                if not self.sessions.create_if_unchanged(
                    auth_session, user.password_hash, user.token_version
                ):
                    raise InvalidMfaToken()
                tokens = self.tokens.issue(user, auth_session, fresh=True)
        if tokens is None:
            raise InvalidCode()
        audit("login.succeeded", user_id=user.id, session_id=auth_session.id, mfa=method)
        return tokens

    def login_with_passkey(
        self, answer: Answer[AuthenticationCredential], *, client: ClientInfo = ClientInfo()
    ) -> TokenPair:
        """Passwordless sign-in: a discoverable passkey, verified by its user on
        the device, is both factors at once; a new session, fresh tokens."""
        tokens, user = None, None
        with self.uow:  # spends the challenge, whatever the outcome
            use = self.passkeys.verify(answer, WebAuthnCeremony.LOGIN)
            user = self.users.get(use.user_id) if use is not None else None
            if user is not None:
                tokens = self.start_session(user, client, method=PASSKEY)
        if tokens is None or user is None:
            audit("login.failed", user_id=user.id if user else None, reason="passkey")
            raise PasskeySignInFailed()
        return tokens

    # -- steps of other use cases (a sign-in proven some other way) -------------------
    def start_session(self, user: User, client: ClientInfo, *, method: str) -> TokenPair | None:
        """A step of the caller's use case: a new session and a fresh token pair for
        an active user proven by ``method``; None (nothing stored) if the user is
        inactive or changed meanwhile. The audit line waits for the commit."""
        if not user.is_active:
            return None
        auth_session = self._new_session(user, client)
        if not self.sessions.create_if_unchanged(
            auth_session, user.password_hash, user.token_version
        ):
            return None
        tokens = self.tokens.issue(user, auth_session, fresh=True)
        self.uow.on_commit(
            lambda: audit(
                "login.succeeded", user_id=user.id, session_id=auth_session.id, method=method
            )
        )
        return tokens

    def require_second_step(self, user: User, new_hash: str | None = None) -> MfaRequired:
        """A step of the caller's use case: store the second step of a sign-in
        whose first factor passed; its token goes to the client."""
        raw = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        if new_hash is not None:
            user.password_hash = new_hash
            self.users.save(user)
        self.challenges.add_challenge(
            MfaChallenge(
                user_id=user.id,
                token_hash=digest(raw),
                binding=digest(challenge_binding(user)),
                expires_at=now + self.mfa.token_lifetime,
            )
        )
        self.uow.on_commit(lambda: audit("login.mfa_required", user_id=user.id))
        return MfaRequired(mfa_token=raw, methods=self.factors.methods(user))

    def passkey_login_options(self) -> dict[str, Any]:
        """Options for passwordless sign-in: any discoverable passkey of this site."""
        with self.uow:
            return self.passkeys.request_options(WebAuthnCeremony.LOGIN, None)

    def second_factor_passkey_options(self, mfa_token: str) -> dict[str, Any]:
        """Options for the login's second step with a passkey of the mfa_token's user."""
        with self.uow:
            challenge = self.challenges.get_challenge(digest(mfa_token))
            user = self.users.get(challenge.user_id) if challenge is not None else None
            if challenge is None or user is None or not self._alive(challenge, user, utcnow()):
                raise InvalidMfaToken()
            if not self.passkeys.has_any(user):
                raise NoPasskey()
            return self.passkeys.request_options(WebAuthnCeremony.SECOND_FACTOR, user)

    def reauthenticate(
        self, user: User, session_id: str, password: str | None, proof: Proof
    ) -> AccessToken:
        """Step-up: the password (and the second factor, when on) again, or a
        passkey alone (both factors), for a fresh access token of the same session."""
        if proof.passkey is not None:
            with self.uow:  # commits the challenge's use, whatever the outcome
                method = self.factors.check(
                    user, proof, self.uow, WebAuthnCeremony.REAUTHENTICATION
                )
            if method is None:
                raise WrongCode("The passkey could not be verified.")
        elif password is None or not self.passwords.verify(user.password_hash, password):
            audit("reauthenticate.failed", user_id=user.id, reason="wrong_password")
            raise WrongPassword("The password is incorrect.")
        elif user.is_mfa_enabled:
            if not proof.given:
                raise CodeRequired()
            with self.uow:  # commits the code's use (its step, or the recovery code)
                if self.factors.check(user, proof, self.uow) is None:
                    raise WrongCode()
        audit("reauthenticated", user_id=user.id, session_id=session_id)
        return self.tokens.issue_access(user, session_id, fresh=True)

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

    def _new_session(self, user: User, client: ClientInfo) -> AuthSession:
        now = utcnow()
        return AuthSession(
            user_id=user.id,
            refresh_jti=new_jti(),
            created_at=now,
            last_used_at=now,
            expires_at=now + min(self.session_lifetime, self.session_absolute_lifetime),
            user_agent=client.user_agent,
            ip=client.ip,
        )

    def _challenge(self, user: User, new_hash: str | None) -> MfaRequired:
        """Store the second step of this login; its token goes to the client."""
        with self.uow:
            return self.require_second_step(user, new_hash)

    def _alive(self, challenge: MfaChallenge, user: User, now: datetime) -> bool:
        return (
            user.is_active
            and challenge.used_at is None
            and challenge.expires_at > now
            and challenge.failed_attempts < self.mfa.max_attempts
            and challenge.binding == digest(challenge_binding(user))
        )

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
