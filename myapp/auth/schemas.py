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


class TokenSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
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
