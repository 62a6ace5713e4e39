from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from myapp.database.columns import UTCDateTime, utcnow
from myapp.extensions import Model

PASSKEY_NAME_MAX_LENGTH = 64


def new_id() -> str:
    return str(uuid.uuid4())


class AuthSession(Model):
    """A login: one refresh-token family, and the anchor of its access tokens.

    Tokens carry the session id (``sid``); revoking the row revokes every token of
    the family at once, in every app process, because the check reads this table.
    """

    __tablename__ = "auth_sessions"

    # Random, not sequential: ids appear in URLs and must not be guessable.
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The jti of the one refresh token of this family that may still be used.
    refresh_jti: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(255))
    ip: Mapped[str | None] = mapped_column(String(45))  # fits IPv6

    def __repr__(self) -> str:
        return f"<AuthSession id={self.id} user_id={self.user_id}>"


class TokenPurpose(enum.StrEnum):
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose's name, not a password
    EMAIL_VERIFICATION = "email_verification"
    EMAIL_CHANGE = "email_change"


class ActionToken(Model):
    """A single-use token sent by email (password reset, email verification).

    Only a SHA-256 of the token is stored: a database leak yields no usable link.
    ``binding`` is a digest of what the token is about (the password hash for a
    reset, the email address for a verification): once that changes, the token is
    dead, whatever path changed it.
    """

    __tablename__ = "action_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    binding: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TotpCredential(Model):
    """A user's authenticator-app secret (RFC 6238), one per user.

    ``confirmed_at`` is None while the enrolment is pending (a code from the app
    has not proved it yet): a pending secret does nothing for sign-in.
    """

    __tablename__ = "totp_credentials"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # Fernet ciphertext of the base32 secret (myapp.crypto): a leaked table alone
    # gives no codes.
    secret_encrypted: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The time step of the last code accepted: that code, and any older one, is
    # refused from then on (replay), whichever endpoint it is sent to.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(Model):
    """A single-use code that stands in for the authenticator app.

    Stored as a SHA-256 over the user id and the normalised code: codes carry 60
    random bits, so unlike passwords they need no slow hash to resist guessing.
    """

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MfaChallenge(Model):
    """The state between a right password and the second factor (the mfa_token).

    Only the token's SHA-256 is stored. ``binding`` is a digest of the user's
    password hash and token version when the password was checked: a password
    change, reset or sign-out everywhere kills the challenge.
    """

    __tablename__ = "mfa_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    binding: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    failed_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Passkey(Model):
    """A WebAuthn credential (a passkey): its public key and what proves it alive.

    Only public material is stored: a leaked table lets nobody sign in. The
    ``id`` is ours (it appears in URLs); ``credential_id`` is the authenticator's.
    """

    __tablename__ = "passkeys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    # The WebAuthn user.id the authenticator stored with this passkey: random, the
    # same for all of a user's passkeys (never the database id: it leaks nothing).
    user_handle: Mapped[bytes] = mapped_column(LargeBinary(64), index=True)
    # The authenticator's signature counter at its last use: one that goes back is
    # a cloned key.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    name: Mapped[str] = mapped_column(String(PASSKEY_NAME_MAX_LENGTH))
    transports: Mapped[str] = mapped_column(String(255), default="")  # comma-separated
    backed_up: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebAuthnCeremony(enum.StrEnum):
    """What a WebAuthn challenge was issued for: a challenge answers only its own."""

    REGISTRATION = "registration"
    LOGIN = "login"  # passwordless: any user's discoverable passkey
    SECOND_FACTOR = "second_factor"  # after a password, the mfa_token's user
    REAUTHENTICATION = "reauthentication"


class WebAuthnChallenge(Model):
    """A challenge handed to the browser, until the answer comes back (single use).

    Only its SHA-256 is stored; the answer names the challenge it signed, and is
    looked up by it. Bound to its ceremony and, but for passwordless sign-in, to
    the user it was issued for.
    """

    __tablename__ = "webauthn_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_hash: Mapped[str] = mapped_column(String(64), unique=True)
    ceremony: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # Registration: the name asked for with the options (the default of the
    # answer's), and the user handle the options gave the authenticator.
    name: Mapped[str | None] = mapped_column(String(PASSKEY_NAME_MAX_LENGTH))
    user_handle: Mapped[bytes | None] = mapped_column(LargeBinary(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OidcIdentity(Model):
    """An account at an OpenID Provider, linked to one of ours: the provider's
    ``sub`` is the identity (never the email, which the provider may reassign)."""

    __tablename__ = "oidc_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    # The address the provider gave when linked (shown to the user; not a key).
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OidcAuthorization(Model):
    """A sign-in (or link) sent to a provider, until its callback: state, nonce and
    the PKCE verifier stay here, server-side. Found by the SHA-256 of ``state``;
    bound to the browser that started it by the SHA-256 of a random value kept in
    an httpOnly cookie; single use."""

    __tablename__ = "oidc_authorizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_path: Mapped[str] = mapped_column(String(255))
    # Set for an explicit link from a signed-in session: the user to link to.
    link_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
