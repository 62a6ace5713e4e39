from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from myapp.auth.models import PASSKEY_NAME_MAX_LENGTH
from myapp.auth.relying_party import MalformedCredential, parse_assertion, parse_registration
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


class PasskeyCredential(fields.Dict):
    """A browser's WebAuthn answer (``PublicKeyCredential.toJSON()``: base64url
    fields), parsed once here; the service receives it with the challenge it
    names. ``registration``: the answer to ``credentials.create``, else ``get``."""

    def __init__(self, *, registration: bool = False, **kwargs: Any) -> None:
        self.parse = parse_registration if registration else parse_assertion
        kind = "navigator.credentials.create" if registration else "navigator.credentials.get"
        kwargs.setdefault("metadata", {}).setdefault(
            "description", f"The PublicKeyCredential from {kind}(), as JSON (base64url)."
        )
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return self.parse(super()._deserialize(value, attr, data, **kwargs))
        except MalformedCredential as error:
            raise ValidationError(str(error)) from None


class SecondFactorSchema(Schema):
    """``{code}`` or ``{recovery_code}`` (and, where a passkey may stand in, ``{passkey}``)."""

    code = TotpCode()
    recovery_code = RecoveryCodeField()

    FACTORS: tuple[str, ...] = ("code", "recovery_code")
    # Two at once would be two guesses for the price of one.
    ONE_REQUIRED = True

    @validates_schema
    def _one_factor(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = sum(name in data for name in self.FACTORS)
        if given > 1 or (self.ONE_REQUIRED and given == 0):
            names = ", ".join(f"'{name}'" for name in self.FACTORS)
            raise ValidationError(f"Give exactly one of {names}.", "_schema")


class MfaLoginSchema(SecondFactorSchema):
    mfa_token = Text(required=True, validate=validate.Length(min=1, max=256))
    passkey = PasskeyCredential()

    FACTORS = ("code", "recovery_code", "passkey")


class MfaTokenSchema(Schema):
    mfa_token = Text(required=True, validate=validate.Length(min=1, max=256))


class ReauthenticateSchema(SecondFactorSchema):
    """The password (and a code or recovery code when two-factor sign-in is on),
    or a passkey alone."""

    ONE_REQUIRED = False
    password = Text(
        load_only=True,
        validate=validate.Length(min=1, max=LOGIN_PASSWORD_MAX_LENGTH),
        metadata={"format": "password"},
    )
    passkey = PasskeyCredential()

    @validates_schema
    def _password_or_passkey(self, data: dict[str, Any], **kwargs: Any) -> None:
        # A passkey verified on the device is both factors: nothing goes with it.
        if ("password" in data) == ("passkey" in data):
            raise ValidationError("Give exactly one of 'password' or 'passkey'.", "_schema")
        if "passkey" in data and ("code" in data or "recovery_code" in data):
            raise ValidationError("A passkey needs no code.", "_schema")


class PasskeyName(Text):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Length(min=1, max=PASSKEY_NAME_MAX_LENGTH))
        kwargs.setdefault("metadata", {}).setdefault("example", "Laptop")
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return " ".join(super()._deserialize(value, attr, data, **kwargs).split())


class PasskeyOptionsSchema(Schema):
    name = PasskeyName()


class PasskeyRegisterSchema(Schema):
    name = PasskeyName()
    credential = PasskeyCredential(registration=True, required=True)


class PasskeyRenameSchema(Schema):
    name = PasskeyName(required=True)


class PasskeyLoginSchema(Schema):
    credential = PasskeyCredential(required=True)


class PasskeySchema(Schema):
    id = fields.String(dump_only=True, metadata={"format": "uuid"})
    name = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    last_used_at = fields.DateTime(dump_only=True, allow_none=True)
    transports = fields.Method("_transports", dump_only=True)

    @staticmethod
    def _transports(passkey: Any) -> list[str]:
        return [transport for transport in passkey.transports.split(",") if transport]


class WebAuthnOptionsSchema(Schema):
    """Options for ``navigator.credentials.create()`` or ``.get()``, as JSON
    (binary values base64url): decode them to bytes before the call."""

    challenge = fields.String(required=True)
    timeout = fields.Integer(metadata={"description": "Milliseconds."})
    rp = fields.Dict(metadata={"description": "Registration: the relying party."})
    user = fields.Dict(metadata={"description": "Registration: the user (id is base64url)."})
    pubKeyCredParams = fields.List(fields.Dict())  # noqa: N815 - WebAuthn's own names
    excludeCredentials = fields.List(fields.Dict())  # noqa: N815
    authenticatorSelection = fields.Dict()  # noqa: N815
    attestation = fields.String()
    hints = fields.List(fields.String())
    rpId = fields.String(metadata={"description": "Sign-in: the relying party."})  # noqa: N815
    allowCredentials = fields.List(fields.Dict())  # noqa: N815
    userVerification = fields.String()  # noqa: N815


class TotpConfirmSchema(Schema):
    code = TotpCode(required=True)


class MfaStatusSchema(Schema):
    totp = fields.Boolean(required=True)
    passkeys = fields.Integer(required=True, metadata={"description": "How many passkeys."})
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


NEXT_MAX_LENGTH = 255


def validate_next(value: str) -> None:
    """A path on this site: "/..." but not "//host" or "/\\host" (which browsers
    read as another site: no backslash at all, then), no scheme, nothing
    unprintable. The open-redirect guard."""
    if (
        not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or not value.isprintable()
        or ":" in value.split("?")[0]
    ):
        raise ValidationError("Must be a path on this site, such as /account.")


class NextSchema(Schema):
    next = Text(
        load_default="/account",
        validate=[validate.Length(min=1, max=NEXT_MAX_LENGTH), validate_next],
        metadata={"description": "A path on this site to land on afterwards."},
    )


class LinkSchema(Schema):
    next = Text(
        load_default="/account/linked",
        validate=[validate.Length(min=1, max=NEXT_MAX_LENGTH), validate_next],
        metadata={"description": "A path on this site to land on afterwards."},
    )


class CallbackQuerySchema(Schema):
    """What a provider appends to the redirect URI; other parameters are ignored."""

    class Meta:
        unknown = EXCLUDE

    code = Text(validate=validate.Length(min=1, max=2048))
    state = Text(validate=validate.Length(min=1, max=256))
    iss = Text(validate=validate.Length(min=1, max=2048))
    error = Text(validate=validate.Length(min=1, max=256))


class ProviderSchema(Schema):
    name = fields.String(required=True)
    label = fields.String(required=True, metadata={"example": "Sign in with Google"})


class AuthorizeUrlSchema(Schema):
    authorize_url = fields.String(
        required=True, metadata={"description": "Open it in the browser."}
    )


class IdentitySchema(Schema):
    id = fields.String(dump_only=True, metadata={"format": "uuid"})
    provider = fields.String(dump_only=True)
    email = fields.String(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)
    last_used_at = fields.DateTime(dump_only=True, allow_none=True)
