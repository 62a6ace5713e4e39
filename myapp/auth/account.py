"""The account's life outside signing in: registration, proof of the email address,
password reset, and clearing out what has expired.

No Flask request objects here: callers pass plain, normalised data. Each public
method is one use case: its writes happen inside ``with self.uow:``, which commits
once at its end or rolls everything back. Emails go out only once that commit has
happened: they are rows of the outbox in the use case's transaction (a
rolled-back change sends nothing), delivered by its worker.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus

from flask import current_app

from myapp.audit import audit
from myapp.auth.models import ActionToken, TokenPurpose
from myapp.auth.repository import ActionTokenRepository, SessionRepository
from myapp.database.columns import utcnow
from myapp.database.unit_of_work import UnitOfWork
from myapp.errors import AppError, Conflict
from myapp.extensions import passwords
from myapp.outbox.compose import Composed, compose
from myapp.outbox.service import Outbox
from myapp.passwords import PasswordHasher
from myapp.users.models import User
from myapp.users.repository import DuplicateUserError, UserRepository

# 32 random bytes = 256 bits, well above the 128-bit floor for unguessable links.
TOKEN_BYTES = 32
# The outbox kind of reset emails, written by the mail worker (prepare_password_reset).
PASSWORD_RESET_EMAIL = "password_reset"  # noqa: S105 - a kind, not a password


def password_reset_email(address: str) -> Composed | None:
    """The preparer of PASSWORD_RESET_EMAIL messages (``outbox.prepare_with``)."""
    return AccountService.from_app().prepare_password_reset(address)


class EmailTaken(Conflict):
    detail = "An account with this email already exists."


class UsernameTaken(Conflict):
    detail = "This username is taken."


class RegistrationRace(Conflict):
    # Lost a race with a concurrent registration of the same email or username.
    detail = "An account with this email or username already exists."


class InvalidActionToken(AppError):
    status = HTTPStatus.BAD_REQUEST
    detail = "The token is invalid, expired or already used."


class AlreadyVerified(Conflict):
    detail = "The email address is already verified."


@dataclass(frozen=True)
class AccountSettings:
    base_url: str
    reset_lifetime: timedelta
    verification_lifetime: timedelta
    email_change_lifetime: timedelta


@dataclass(frozen=True)
class Pruned:
    sessions: int
    tokens: int


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def email_change_binding(user: User) -> str:
    """What an email-change token is about: the move from this address to that one."""
    return f"{user.email}\n{user.pending_email}"


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
        outbox: Outbox,
        settings: AccountSettings,
        uow: UnitOfWork,
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.tokens = tokens
        self.passwords = passwords
        self.outbox = outbox
        self.settings = settings
        self.uow = uow

    @classmethod
    def from_app(cls) -> AccountService:
        """The service wired for the current app (what routes and commands call)."""
        config = current_app.config
        return cls(
            UserRepository(),
            SessionRepository(),
            ActionTokenRepository(),
            passwords,
            Outbox.from_app(),
            AccountSettings(
                base_url=config["APP_BASE_URL"],
                reset_lifetime=timedelta(seconds=config["PASSWORD_RESET_TOKEN_EXPIRES"]),
                verification_lifetime=timedelta(seconds=config["EMAIL_VERIFICATION_TOKEN_EXPIRES"]),
                email_change_lifetime=timedelta(seconds=config["EMAIL_CHANGE_TOKEN_EXPIRES"]),
            ),
            UnitOfWork(),
        )

    # -- registration ---------------------------------------------------------
    def register(
        self,
        email: str,
        username: str,
        password: str,
        *,
        is_admin: bool = False,
        is_verified: bool = False,
    ) -> User:
        """Create an account; unless its address is vouched for (``is_verified``, the
        operator's ``flask create-admin``), send a link that proves it.

        The one registration path: the API and the CLI both come here.
        """
        email_taken, username_taken = self.users.find_conflicts(email, username)
        if email_taken:
            raise EmailTaken()
        if username_taken:
            raise UsernameTaken()
        # Hashed before the transaction starts: none is held during the hash.
        password_hash = self.passwords.hash(password)
        with self.uow:
            user = User(
                email=email,
                username=username,
                password_hash=password_hash,
                is_admin=is_admin,
                is_verified=is_verified,
            )
            try:
                self.users.add(user)
            except DuplicateUserError:
                raise RegistrationRace() from None
            if not is_verified:
                self.queue_verification(user)
        return user

    # -- password reset ---------------------------------------------------------
    def request_password_reset(self, email: str) -> None:
        """Queue a reset link for this address; say nothing either way.

        The request does the same work whether or not an account uses the address
        (no lookup, no token: one outbox row), so neither its answer nor its timing
        tells; the mail worker writes the link (``prepare_password_reset``).
        """
        with self.uow:
            self.outbox.queue_to_prepare(email, kind=PASSWORD_RESET_EMAIL)
        audit("password.reset_requested")

    def prepare_password_reset(self, email: str) -> Composed | None:
        """A step of the mail worker's use case: the reset email for this address,
        its token stored with it; None when no active account uses the address."""
        user = self.users.get_by_email(email)
        if user is None or not user.is_active:
            return None
        token = self._issue(
            user, TokenPurpose.PASSWORD_RESET, reset_binding(user), self.settings.reset_lifetime
        )
        minutes = int(self.settings.reset_lifetime.total_seconds() // 60)
        return compose(
            "Reset your password",
            [
                "Someone asked to reset the password of your account.",
                "If it was not you, ignore this email: your password stays as it is.",
            ],
            link=(
                f"To choose a new password, open this link within {minutes} minutes",
                f"{self.settings.base_url}/account/reset?token={token}",
            ),
        )

    def reset_password(self, token: str, new_password: str) -> None:
        with self.uow:
            user = self._redeem(token, TokenPurpose.PASSWORD_RESET, reset_binding)
            # Hashed only once the token proved valid (the endpoint is open to
            # anyone), and so inside the transaction that consumed it.
            user.password_hash = self.passwords.hash(new_password)
            # A reset means the old password may be known to someone else: end every
            # session and every token ever issued.
            user.token_version += 1
            self.sessions.revoke_all(user.id, utcnow())
            self.users.save(user)
            self.outbox.queue(
                user.email,
                compose(
                    "Your password was reset",
                    [
                        "The password of your account was reset with a link sent to this "
                        "address, and every session was signed out.",
                        "If it was not you, reset it again at once: someone can read this mailbox.",
                    ],
                ),
                kind="password_reset_completed",
            )
        audit("password.reset", user_id=user.id)

    # -- email verification -------------------------------------------------
    def resend_verification(self, user: User) -> None:
        if user.is_verified:
            raise AlreadyVerified()
        with self.uow:
            self.queue_verification(user)

    def verify_email(self, token: str) -> User:
        with self.uow:
            user = self._redeem(token, TokenPurpose.EMAIL_VERIFICATION, lambda u: u.email)
            user.is_verified = True
            self.users.save(user)
        audit("email.verified", user_id=user.id)
        return user

    def queue_verification(self, user: User) -> None:
        """A step inside the caller's use case (registration, a resend, an email
        change): store a verification token for the user's current address; the
        link goes out when that use case commits."""
        token = self._issue(
            user, TokenPurpose.EMAIL_VERIFICATION, user.email, self.settings.verification_lifetime
        )
        self.outbox.queue(
            user.email,
            compose(
                "Confirm your email address",
                ["Welcome! Confirm that this address is yours."],
                link=("Open this link", f"{self.settings.base_url}/account/verify?token={token}"),
            ),
            kind="email_verification",
        )

    # -- email change (the user's own; steps of users' use cases) ------------------
    def queue_email_change(self, user: User) -> None:
        """A step inside the caller's use case: a link that proves
        ``user.pending_email``, sent there. Bound to both addresses: a later request
        (another pending address) or any change of the address kills it."""
        new_address = user.pending_email or ""
        token = self._issue(
            user,
            TokenPurpose.EMAIL_CHANGE,
            email_change_binding(user),
            self.settings.email_change_lifetime,
        )
        hours = int(self.settings.email_change_lifetime.total_seconds() // 3600)
        self.outbox.queue(
            new_address,
            compose(
                "Confirm your new email address",
                [
                    f"You asked to use this address for your account instead of {user.email}.",
                    "Until you open the link, nothing changes. If it was not you, ignore "
                    "this email.",
                ],
                link=(
                    f"To confirm it, open this link within {hours} hours",
                    f"{self.settings.base_url}/account/confirm-email?token={token}",
                ),
            ),
            kind="email_change",
        )

    def redeem_email_change(self, token: str) -> User | None:
        """A step inside the caller's use case: the user whose pending address the
        token proves, the token used up; None for a bad, used or expired one."""
        try:
            return self._redeem(token, TokenPurpose.EMAIL_CHANGE, email_change_binding)
        except InvalidActionToken:
            return None

    # -- housekeeping -----------------------------------------------------------
    def prune_expired(self) -> Pruned:
        """Delete expired sessions (with their revoked refresh tokens) and expired
        reset and verification tokens."""
        now = utcnow()
        with self.uow:
            pruned = Pruned(sessions=self.sessions.prune(now), tokens=self.tokens.prune(now))
        return pruned

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
