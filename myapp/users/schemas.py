from __future__ import annotations

import contextlib
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from myapp.passwords import is_common_password
from myapp.schemas import Text
from myapp.users.models import EMAIL_MAX_LENGTH, USERNAME_MAX_LENGTH, USERNAME_MIN_LENGTH


def canonical_email(email: str) -> str:
    """The one form a mailbox is stored and looked up in, or ``EmailNotValidError``.

    email-validator checks the syntax (no DNS lookup) and writes the domain one way
    (IDNA decoded, Unicode NFC), so ``a@xn--bcher-kva.de`` and ``a@bücher.de`` are
    one mailbox and so one account; then everything is lower-cased, as before.
    Input is normalised here, at the schema, once: services and repositories receive
    the stored form.
    """
    return validate_email(email.strip(), check_deliverability=False).normalized.lower()


def normalise_email(email: str) -> str:
    """``canonical_email`` for an address typed to find an account (login, reset):
    one that is not an address stays as typed, trimmed and lower-cased (it matches
    nobody; refusing it would tell nothing more)."""
    with contextlib.suppress(EmailNotValidError):
        return canonical_email(email)
    return email.strip().lower()


def normalise_username(username: str) -> str:
    """Trimmed and lower-cased, like emails: "Ada" and "ada" are one account."""
    return username.strip().lower()


# \A...\Z, not ^...$: "$" would also accept a trailing newline.
USERNAME_PATTERN = rf"\A[A-Za-z0-9_.-]{{{USERNAME_MIN_LENGTH},{USERNAME_MAX_LENGTH}}}\Z"
USERNAME_RULE = (
    f"Must be {USERNAME_MIN_LENGTH}-{USERNAME_MAX_LENGTH} ASCII letters, digits, '_', '.' or '-'."
)


class NormalisedEmail(fields.Email):
    """An email address being set: valid syntax (email-validator's), in its
    canonical form (``canonical_email``)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Length(max=EMAIL_MAX_LENGTH))
        kwargs.setdefault("metadata", {}).setdefault("example", "ada@example.com")
        super().__init__(**kwargs)
        # email-validator, below, is the one judge of syntax.
        self.validators = [v for v in self.validators if not isinstance(v, validate.Email)]

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            return canonical_email(value)
        except EmailNotValidError:
            raise self.make_error("invalid") from None


class Username(Text):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "validate",
            validate.Regexp(USERNAME_PATTERN, error=USERNAME_RULE),
        )
        kwargs.setdefault("metadata", {}).setdefault("example", "ada")
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        value = super()._deserialize(value, attr, data, **kwargs)
        if not value.isascii():
            # Checked before lower-casing, which maps some non-ASCII letters (the
            # Kelvin sign) to ASCII ones: only what is typed as ASCII is accepted,
            # so no name can look like another's in the admin list.
            raise ValidationError(USERNAME_RULE)
        return normalise_username(value)


class NewPassword(Text):
    """A password being set: the length policy comes from configuration."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("load_only", True)
        kwargs.setdefault("metadata", {}).update(
            {"format": "password", "minLength": 12, "maxLength": 128}
        )
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        value = super()._deserialize(value, attr, data, **kwargs)
        low = current_app.config["PASSWORD_MIN_LENGTH"]
        high = current_app.config["PASSWORD_MAX_LENGTH"]
        # Checked before any hashing; counted in characters, never truncated.
        if not low <= len(value) <= high:
            raise ValidationError(f"Length must be between {low} and {high} characters.")
        if is_common_password(value):
            raise ValidationError(
                "This password is one of the most commonly used passwords; choose another."
            )
        return value


class UserSchema(Schema):
    id = fields.Integer(dump_only=True)
    email = fields.Email(dump_only=True)
    username = fields.String(dump_only=True)
    is_active = fields.Boolean(dump_only=True)
    is_admin = fields.Boolean(dump_only=True)
    is_verified = fields.Boolean(dump_only=True)
    is_mfa_enabled = fields.Boolean(
        dump_only=True, metadata={"description": "Signing in takes a second factor."}
    )
    pending_email = fields.Email(
        dump_only=True,
        allow_none=True,
        metadata={"description": "A new address waiting for its confirmation link."},
    )
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        # Users and the list's rows are read by attribute. marshmallow tries obj[attr]
        # first on anything indexable, and a Row's [] takes positions only: that cost
        # an exception per field, 160 per list page.
        return getattr(obj, attr, default)


class PasswordChangeSchema(Schema):
    current_password = Text(
        required=True, load_only=True, validate=validate.Length(min=1, max=1024)
    )
    new_password = NewPassword(required=True)


class StrictBoolean(fields.Boolean):
    """JSON ``true``/``false`` only: ``"yes"`` or ``1`` in a body is a mistake."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        # isinstance, not membership: 1 == True in Python sets.
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class PartialUpdateSchema(Schema):
    """A PATCH body: every field optional, but at least one given."""

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one field to change.", "_schema")


class ProfileUpdateSchema(PartialUpdateSchema):
    """What users may change about themselves; any other field is a 422."""

    email = NormalisedEmail()
    username = Username()


class AdminUserUpdateSchema(ProfileUpdateSchema):
    is_active = StrictBoolean()
    is_admin = StrictBoolean()


class EmailChangeConfirmSchema(Schema):
    # A token from an email link: opaque, bounded, printable.
    token = Text(required=True, validate=validate.Length(min=1, max=256))


class AccountDeletionSchema(Schema):
    password = Text(required=True, load_only=True, validate=validate.Length(min=1, max=1024))


SORT_ORDERS = ("created_at", "-created_at", "email", "-email", "username", "-username")
MAX_PER_PAGE = 100


class UserListQuerySchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10**9))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))
    q = Text(
        validate=validate.Length(min=1, max=254),
        metadata={"description": "Case-insensitive substring of the email or username."},
    )
    is_active = fields.Boolean()
    is_admin = fields.Boolean()
    is_verified = fields.Boolean()
    mfa = fields.Boolean(
        metadata={"description": "Only users with (true) or without a second factor."}
    )
    sort = fields.String(load_default="created_at", validate=validate.OneOf(SORT_ORDERS))


class PaginationHeaderSchema(Schema):
    """The JSON in the ``X-Pagination`` response header."""

    total = fields.Integer()
    total_pages = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()
    first_page = fields.Integer()
    last_page = fields.Integer()
    previous_page = fields.Integer()
    next_page = fields.Integer()
