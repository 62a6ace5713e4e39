"""Passkeys' HTTP API: the user's passkeys under ``/auth/passkeys``, passwordless
sign-in, and the options of the two ceremonies where a passkey stands in for a
code (the login's second step, re-authentication). Thin views, as elsewhere."""

from __future__ import annotations

from typing import Any

from flask_jwt_extended import current_user, jwt_required

from myapp.access import BEARER, PASSWORD_CHECKS_MESSAGE
from myapp.auth import cookies
from myapp.auth.models import Passkey, WebAuthnCeremony
from myapp.auth.passkeys import PasskeyService
from myapp.auth.routes import LOGIN_ATTEMPTS_MESSAGE, client_info
from myapp.auth.schemas import (
    MfaTokenSchema,
    PasskeyLoginSchema,
    PasskeyOptionsSchema,
    PasskeyRegisterSchema,
    PasskeyRenameSchema,
    PasskeySchema,
    TokenSchema,
    TransportSchema,
    WebAuthnOptionsSchema,
)
from myapp.auth.service import AuthService
from myapp.openapi import Blueprint, problems
from myapp.ratelimit import per_user, rate_limit

blp = Blueprint(
    "passkeys",
    __name__,
    url_prefix="/api/v1/auth",
    description="Passkeys (WebAuthn): passwordless sign-in and a phishing-resistant second factor.",
)


# Adding and removing passkeys need a fresh token: a stolen refreshed session must
# not be able to plant its own passkey, or remove the owner's.
@blp.route("/passkeys/register/options", methods=["POST"])
@problems(blp, 401, 422, 429)
@blp.doc(security=BEARER)
@blp.arguments(PasskeyOptionsSchema)
@blp.response(200, WebAuthnOptionsSchema)
@jwt_required(fresh=True)
@per_user("RATELIMIT_MFA_CHANGES", "Too many new passkeys; try again later.")
def register_options(data: dict[str, str]) -> dict[str, Any]:
    """Options for ``navigator.credentials.create()``.

    A discoverable passkey with user verification; the user's existing passkeys
    are excluded. The challenge is single use and expires after
    ``WEBAUTHN_CHALLENGE_EXPIRES`` (5 minutes).
    """
    return PasskeyService.from_app().registration_options(current_user, data.get("name"))


@blp.route("/passkeys/register", methods=["POST"])
@problems(blp, 400, 401, 409, 422)
@blp.doc(security=BEARER)
@blp.arguments(PasskeyRegisterSchema)
@blp.response(201, PasskeySchema)
@jwt_required(fresh=True)
def register(data: dict[str, Any]) -> tuple[Passkey, int]:
    """Store the passkey ``navigator.credentials.create()`` made; the owner is emailed.

    400 when it does not verify (origin, RP ID, challenge, user verification);
    409 when it is already registered. The account now has a second factor.
    """
    passkey = PasskeyService.from_app().register(current_user, data["credential"], data.get("name"))
    return passkey, 201


@blp.route("/passkeys")
@problems(blp, 401)
@blp.doc(security=BEARER)
@blp.response(200, PasskeySchema(many=True))
@jwt_required()
def list_passkeys() -> list[Passkey]:
    """The user's passkeys, oldest first."""
    return PasskeyService.from_app().list(current_user)


@blp.route("/passkeys/<uuid:passkey_id>", methods=["PATCH"])
@problems(blp, 401, 404, 422)
@blp.doc(security=BEARER)
@blp.arguments(PasskeyRenameSchema)
@blp.response(200, PasskeySchema)
@jwt_required()
def rename_passkey(data: dict[str, str], passkey_id: Any) -> Passkey:
    """Rename one of the user's passkeys (404 for any other id)."""
    return PasskeyService.from_app().rename(current_user, str(passkey_id), data["name"])


@blp.route("/passkeys/<uuid:passkey_id>", methods=["DELETE"])
@problems(blp, 401, 404, 409)
@blp.doc(security=BEARER)
@blp.response(204)
@jwt_required(fresh=True)
def delete_passkey(passkey_id: Any) -> None:
    """Remove one of the user's passkeys; the owner is emailed.

    409 for the last passkey of an account without a password: it would leave no
    way to sign in.
    """
    PasskeyService.from_app().delete(current_user, str(passkey_id))


@blp.route("/passkeys/login/options", methods=["POST"])
@problems(blp, 429)
@rate_limit("RATELIMIT_LOGIN", message=LOGIN_ATTEMPTS_MESSAGE)
@blp.response(200, WebAuthnOptionsSchema)
def login_options() -> dict[str, Any]:
    """Options for passwordless sign-in (``navigator.credentials.get()``).

    ``allowCredentials`` is empty: the browser offers this site's passkeys.
    """
    return AuthService.from_app().passkey_login_options()


@blp.route("/passkeys/login", methods=["POST"])
@problems(blp, 401, 422, 429)
@rate_limit("RATELIMIT_LOGIN", message=LOGIN_ATTEMPTS_MESSAGE)
@blp.arguments(PasskeyLoginSchema)
@blp.arguments(TransportSchema, location="headers", as_kwargs=True)
@blp.response(200, TokenSchema)
def login(data: dict[str, Any], transport: str | None = None) -> Any:
    """Sign in with a passkey, no password.

    A passkey verified on the device counts as both factors: the answer is the
    usual fresh token pair and a new session (no ``mfa_required`` step), with the
    cookie transport as for a password login. Any failure is the same 401.
    """
    tokens = AuthService.from_app().login_with_passkey(data["credential"], client=client_info())
    return cookies.deliver(tokens, transport)


@blp.route("/login/mfa/passkey/options", methods=["POST"])
@problems(blp, 401, 409, 422, 429)
@rate_limit("RATELIMIT_LOGIN", message=LOGIN_ATTEMPTS_MESSAGE)
@blp.arguments(MfaTokenSchema)
@blp.response(200, WebAuthnOptionsSchema)
def second_factor_options(data: dict[str, str]) -> dict[str, Any]:
    """Options for the login's second step with a passkey of the mfa_token's user.

    Send the answer as ``passkey`` to ``POST /auth/login/mfa``. 409 when the user
    has no passkey.
    """
    return AuthService.from_app().second_factor_passkey_options(data["mfa_token"])


@blp.route("/reauthenticate/passkey/options", methods=["POST"])
@problems(blp, 401, 409, 429)
@blp.doc(security=BEARER)
@blp.response(200, WebAuthnOptionsSchema)
@jwt_required()
@per_user("RATELIMIT_PASSWORD_CHECK", PASSWORD_CHECKS_MESSAGE)
def reauthenticate_options() -> dict[str, Any]:
    """Options for step-up with one of the user's passkeys.

    Send the answer as ``passkey`` to ``POST /auth/reauthenticate``. 409 when the
    user has no passkey.
    """
    return PasskeyService.from_app().request_options(
        current_user, WebAuthnCeremony.REAUTHENTICATION
    )
