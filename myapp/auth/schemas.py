from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from myapp.schemas import Text
from myapp.users.models import EMAIL_MAX_LENGTH, USERNAME_MAX_LENGTH
from myapp.users.schemas import (
    NewPassword,
    NormalisedEmail,
    Username,
    normalise_email,
    normalise_username,
)

# A login password is compared, not set: no minimum (policies change), but a cap so
# a megabyte of input is refused before it reaches the hasher.
LOGIN_PASSWORD_MAX_LENGTH = 1024


class RegisterSchema(Schema):
    email = NormalisedEmail(required=True)
    username = Username(required=True)
    password = NewPassword(required=True)


class LoginEmail(Text):
    """An email address typed to find an account: normalised, not format-checked
    (a malformed one simply matches nobody)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return normalise_email(super()._deserialize(value, attr, data, **kwargs))


class LoginUsername(Text):
    """A username typed to find an account: normalised."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return normalise_username(super()._deserialize(value, attr, data, **kwargs))


class LoginSchema(Schema):
    """``{email, password}`` or ``{username, password}``: exactly one identifier."""

    email = LoginEmail(validate=validate.Length(min=1, max=EMAIL_MAX_LENGTH))
    username = LoginUsername(validate=validate.Length(min=1, max=USERNAME_MAX_LENGTH))
    password = Text(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=LOGIN_PASSWORD_MAX_LENGTH),
        metadata={"format": "password"},
    )

    @validates_schema
    def _one_identifier(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("email" in data) == ("username" in data):
            raise ValidationError("Give exactly one of 'email' or 'username'.", "_schema")


class TotpCode(Text):
    """A 6-digit code from an authenticator app; spaces (``123 456``, as apps show
    it) are dropped."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).setdefault("example", "123456")
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        code = "".join(super()._deserialize(value, attr, data, **kwargs).split())
        if not (len(code) == 6 and code.isascii() and code.isdigit()):
            raise ValidationError("Must be the 6 digits the authenticator app shows.")
        return code


class RecoveryCodeField(Text):
    """A recovery code as typed: any case, with or without separators (the
    service normalises it)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Length(min=1, max=64))
        kwargs.setdefault("metadata", {}).setdefault("example", "7KQ4-MZ2H-XWT9")
        super().__init__(**kwargs)


class SecondFactorSchema(Schema):
    """``{code}`` or ``{recovery_code}``."""

    code = TotpCode()
    recovery_code = RecoveryCodeField()

    # Both at once would be two guesses for the price of one.
    ONE_REQUIRED = True

    @validates_schema
    def _one_factor(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = ("code" in data) + ("recovery_code" in data)
        if given > 1 or (self.ONE_REQUIRED and given == 0):
            raise ValidationError("Give exactly one of 'code' or 'recovery_code'.", "_schema")


class MfaLoginSchema(SecondFactorSchema):
    mfa_token = Text(required=True, validate=validate.Length(min=1, max=256))


class ReauthenticateSchema(SecondFactorSchema):
    """The password, and a code or recovery code when two-factor sign-in is on."""

    ONE_REQUIRED = False
    password = Text(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=LOGIN_PASSWORD_MAX_LENGTH),
        metadata={"format": "password"},
    )


class TotpConfirmSchema(Schema):
    code = TotpCode(required=True)


class MfaStatusSchema(Schema):
    totp = fields.Boolean(required=True)
    recovery_codes_left = fields.Integer(required=True)
    methods = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Second-step methods the account accepts at login."},
    )


class TotpSetupSchema(Schema):
    secret = fields.String(required=True, metadata={"description": "Base32, for manual entry."})
    otpauth_uri = fields.String(required=True)
    qr_svg = fields.String(required=True, metadata={"description": "The URI as an SVG QR code."})


class RecoveryCodesSchema(Schema):
    recovery_codes = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Shown this once: only their hashes are kept."},
    )


class AccessTokenSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "bearer"})
    expires_in = fields.Integer(
        required=True, metadata={"description": "Access token lifetime in seconds."}
    )


class LoginResultSchema(Schema):
    """Either the token pair, or (two-factor sign-in on) the second step's token."""

    access_token = fields.String()
    refresh_token = fields.String(metadata={"description": "Absent with cookie transport."})
    csrf_token = fields.String(metadata={"description": "Cookie transport only."})
    token_type = fields.String(metadata={"example": "bearer"})
    expires_in = fields.Integer(metadata={"description": "Access token lifetime in seconds."})
    mfa_required = fields.Boolean(
        metadata={"description": "True: no tokens yet; send a code to POST /auth/login/mfa."}
    )
    mfa_token = fields.String(metadata={"description": "Single use, short-lived."})
    methods = fields.List(fields.String())


class TransportSchema(Schema):
    """The request header that moves the refresh token into an httpOnly cookie."""

    transport = fields.String(
        data_key="X-Token-Transport",
        validate=validate.OneOf(["cookie"]),
        metadata={
            "description": "`cookie`: the refresh token is set as the httpOnly cookie "
            "`myapp_refresh` (Path=/api/v1/auth) instead of appearing in the body, with a "
            "readable `myapp_csrf` cookie whose value later requests send as "
            "`X-CSRF-Token`."
        },
    )


class TokenSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(
        metadata={"description": "Absent with cookie transport (it is in the cookie)."}
    )
    csrf_token = fields.String(
        metadata={"description": "Cookie transport only: the value for X-CSRF-Token."}
    )
    token_type = fields.String(required=True, metadata={"example": "bearer"})
    expires_in = fields.Integer(
        required=True, metadata={"description": "Access token lifetime in seconds."}
    )


class SessionSchema(Schema):
    id = fields.String(dump_only=True, metadata={"format": "uuid"})
    created_at = fields.DateTime(dump_only=True)
    last_used_at = fields.DateTime(
        dump_only=True, metadata={"description": "Time of the last login or refresh."}
    )
    user_agent = fields.String(dump_only=True, allow_none=True)
    ip = fields.String(dump_only=True, allow_none=True)


class PasswordResetRequestSchema(Schema):
    email = LoginEmail(required=True, validate=validate.Length(min=1, max=EMAIL_MAX_LENGTH))


class TokenField(Text):
    """A token from an email link: opaque, bounded, printable."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Length(min=1, max=256))
        super().__init__(**kwargs)


class PasswordResetConfirmSchema(Schema):
    token = TokenField(required=True)
    new_password = NewPassword(required=True)


class VerifyEmailSchema(Schema):
    token = TokenField(required=True)


class MessageSchema(Schema):
    detail = fields.String(required=True)
