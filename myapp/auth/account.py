"""Account recovery and proof of ownership: password change and reset, email
verification. No Flask request objects here."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus
from typing import Callable

from myapp.audit import audit
from myapp.auth.models import ActionToken, TokenPurpose
from myapp.auth.repository import ActionTokenRepository, SessionRepository
from myapp.database import utcnow
from myapp.errors import AppError, Conflict, Forbidden
from myapp.mail import EmailDeliveryError, EmailService
from myapp.passwords import PasswordHasher
from myapp.users.models import User, normalise_email
from myapp.users.repository import UserRepository

logger = logging.getLogger(__name__)

# 32 random bytes = 256 bits, well above the 128-bit floor for unguessable links.
TOKEN_BYTES = 32


class InvalidActionToken(AppError):
    status = HTTPStatus.BAD_REQUEST
    detail = "The token is invalid, expired or already used."


class WrongPassword(Forbidden):
    detail = "The current password is incorrect."


class AlreadyVerified(Conflict):
    detail = "The email address is already verified."


@dataclass(frozen=True)
class AccountSettings:
    base_url: str
    reset_lifetime: timedelta
    verification_lifetime: timedelta


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def reset_binding(user: User) -> str:
    """What a reset token is about: the password it replaces, and the address it
    was sent to (a link mailed to an address the account no longer uses must die)."""
    return f"{user.password_hash}\n{user.email}"


class AccountService:
    def __init__(
        self,
        users: UserRepository,
        sessions: SessionRepository,
        tokens: ActionTokenRepository,
        passwords: PasswordHasher,
        email: EmailService,
        settings: AccountSettings,
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.tokens = tokens
        self.passwords = passwords
        self.email = email
        self.settings = settings

    # -- password -----------------------------------------------------------
    def change_password(
        self, user: User, current_password: str, new_password: str, *, keep_session: str
    ) -> None:
        if not self.passwords.verify(user.password_hash, current_password):
            raise WrongPassword()
        user.password_hash = self.passwords.hash(new_password)
        # Whoever else holds a session (perhaps the reason for the change) is out.
        self.sessions.revoke_all(user.id, utcnow(), keep=keep_session)
        self.users.save(user)
        audit("password.changed", user_id=user.id)

    def request_password_reset(self, email: str) -> None:
        """Send a reset link if an active account has this email; say nothing either way."""
        user = self.users.get_by_email(normalise_email(email))
        if user is None or not user.is_active:
            return
        audit("password.reset_requested", user_id=user.id)
        token = self._issue(
            user, TokenPurpose.PASSWORD_RESET, reset_binding(user), self.settings.reset_lifetime
        )
        minutes = int(self.settings.reset_lifetime.total_seconds() // 60)
        self._send(
            user.email,
            "Reset your password",
            "Someone asked to reset the password of your account.\n\n"
            f"To choose a new password, open this link within {minutes} minutes:\n"
            f"{self.settings.base_url}/reset-password?token={token}\n\n"
            "If it was not you, ignore this email: your password stays as it is.",
        )

    def reset_password(self, token: str, new_password: str) -> None:
        user = self._redeem(token, TokenPurpose.PASSWORD_RESET, reset_binding)
        user.password_hash = self.passwords.hash(new_password)
        # A reset means the old password may be known to someone else: end every
        # session and every token ever issued.
        user.token_version += 1
        self.sessions.revoke_all(user.id, utcnow())
        self.users.save(user)
        audit("password.reset", user_id=user.id)

    # -- email verification -------------------------------------------------
    def send_verification(self, user: User) -> None:
        token = self._issue(
            user, TokenPurpose.EMAIL_VERIFICATION, user.email, self.settings.verification_lifetime
        )
        self._send(
            user.email,
            "Confirm your email address",
            "Welcome! Confirm that this address is yours by opening this link:\n"
            f"{self.settings.base_url}/verify-email?token={token}",
        )

    def resend_verification(self, user: User) -> None:
        if user.is_verified:
            raise AlreadyVerified()
        self.send_verification(user)

    def verify_email(self, token: str) -> User:
        user = self._redeem(token, TokenPurpose.EMAIL_VERIFICATION, lambda u: u.email)
        user.is_verified = True
        self.users.save(user)
        audit("email.verified", user_id=user.id)
        return user

    # -- tokens ---------------------------------------------------------------
    def _issue(self, user: User, purpose: TokenPurpose, bound_to: str, lifetime: timedelta) -> str:
        raw = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        self.tokens.add(
            ActionToken(
                user_id=user.id,
                purpose=purpose,
                token_hash=digest(raw),
                binding=digest(bound_to),
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        return raw

    def _redeem(self, raw: str, purpose: TokenPurpose, bound_to: Callable[[User], str]) -> User:
        """The user of a live token of this purpose, marking the token used."""
        row = self.tokens.get_by_hash(digest(raw))
        now = utcnow()
        if row is None or row.purpose != purpose or row.used_at is not None:
            raise InvalidActionToken()
        if row.expires_at <= now:
            raise InvalidActionToken()
        user = self.users.get(row.user_id)
        if user is None or not user.is_active or row.binding != digest(bound_to(user)):
            raise InvalidActionToken()
        if not self.tokens.consume(row.id, now):
            raise InvalidActionToken()  # a concurrent request used it first
        return user

    def _send(self, to: str, subject: str, body: str) -> None:
        try:
            self.email.send(to, subject, body)
        except EmailDeliveryError:
            # Callers answer the same whether or not mail went out (no account
            # oracle); operators learn of it here.
            logger.exception("Email delivery failed (subject %r)", subject)
