"""Auth's HTTP API: thin views; decorators declare auth, input and output, the body
calls one use case."""

from __future__ import annotations

from typing import Any

from flask import request, url_for
from flask_jwt_extended import current_user, get_jwt, get_jwt_request_location, jwt_required

from myapp.access import BEARER, PASSWORD_CHECKS_MESSAGE, current_session_id
from myapp.auth import cookies
from myapp.auth.account import AccountService
from myapp.auth.mfa import Proof
from myapp.auth.schemas import (
    AccessTokenSchema,
    LoginResultSchema,
    LoginSchema,
    MessageSchema,
    MfaLoginSchema,
    PasswordResetConfirmSchema,
    PasswordResetRequestSchema,
    ReauthenticateSchema,
    RegisterSchema,
    SessionSchema,
    TokenSchema,
    TransportSchema,
    VerifyEmailSchema,
)
from myapp.auth.service import AuthService, ClientInfo, MfaRequired
from myapp.auth.tokens import AccessToken
from myapp.openapi import Blueprint, problems
from myapp.ratelimit import per_user, rate_limit
from myapp.users.models import User
from myapp.users.schemas import UserSchema

# The refresh endpoints take a bearer token, or the refresh cookie with its CSRF header.
BEARER_OR_COOKIE: list[dict[str, list[str]]] = [
    {"bearerAuth": []},
    {"refreshCookie": [], "csrfHeader": []},
]

blp = Blueprint(
    "auth",
    __name__,
    url_prefix="/api/v1/auth",
    description="Registration, login, sessions and account recovery.",
)

LOGIN_ATTEMPTS_MESSAGE = "Too many login attempts from this address."
RESET_REQUESTED = {
    "detail": "If an active account uses this address, a reset link has been sent to it."
}


def client_info() -> ClientInfo:
    return ClientInfo(user_agent=request.user_agent.string[:255] or None, ip=request.remote_addr)


@blp.route("/register", methods=["POST"])
@problems(blp, 409, 422, 429)
@rate_limit("RATELIMIT_REGISTER", message="Too many registrations from this address.")
@blp.arguments(RegisterSchema)
@blp.response(201, UserSchema, headers={"Location": {"schema": {"type": "string"}}})
def register(data: dict[str, Any]) -> tuple[User, int, dict[str, str]]:
    """Create an account and send a verification email.

    The email is stored trimmed and lower-cased; email and username are unique
    regardless of letter case.
    """
    user = AccountService.from_app().register(**data)
    return user, 201, {"Location": url_for("users.get_user", user_id=user.id)}


@blp.route("/login", methods=["POST"])
@problems(blp, 401, 422, 429)
@rate_limit("RATELIMIT_LOGIN", message=LOGIN_ATTEMPTS_MESSAGE)
@blp.arguments(LoginSchema)
@blp.arguments(TransportSchema, location="headers", as_kwargs=True)
@blp.response(200, LoginResultSchema)
def login(data: dict[str, Any], transport: str | None = None) -> Any:
    """Log in: exchange credentials for tokens.

    Takes an email or a username, and the password. Returns a fresh access token
    and a refresh token, and starts a session. Besides the limit per address, each
    account has a budget of wrong passwords per window (429 once it is spent).

    With two-factor sign-in on, the right password returns no tokens but
    ``{mfa_required: true, mfa_token, methods}``: send the code with the token to
    ``POST /auth/login/mfa``.

    ``X-Token-Transport: cookie`` (browsers): the refresh token goes into an
    httpOnly cookie instead of the body.
    """
    password = data.pop("password")
    result = AuthService.from_app().login(password, client=client_info(), **data)
    return result if isinstance(result, MfaRequired) else cookies.deliver(result, transport)


@blp.route("/login/mfa", methods=["POST"])
@problems(blp, 401, 422, 429)
@rate_limit("RATELIMIT_LOGIN", message=LOGIN_ATTEMPTS_MESSAGE)
@blp.arguments(MfaLoginSchema)
@blp.arguments(TransportSchema, location="headers", as_kwargs=True)
@blp.response(200, TokenSchema)
def login_mfa(data: dict[str, Any], transport: str | None = None) -> Any:
    """Second step of a login: the mfa_token and a code, a recovery code or a passkey.

    For a passkey, get options from ``POST /auth/login/mfa/passkey/options`` and
    send the browser's answer as ``passkey``.

    Returns the same fresh token pair as a password login and starts a session.
    The mfa_token is single-use, short-lived (``MFA_TOKEN_EXPIRES``), dies with a
    password change and after 5 wrong codes. A wrong code is 401.
    """
    proof = Proof(data.get("code"), data.get("recovery_code"), data.get("passkey"))
    tokens = AuthService.from_app().complete_login(data["mfa_token"], proof, client=client_info())
    return cookies.deliver(tokens, transport)


@blp.route("/reauthenticate", methods=["POST"])
@problems(blp, 401, 403, 422, 429)
@blp.doc(security=BEARER)
@blp.arguments(ReauthenticateSchema)
@blp.response(200, AccessTokenSchema)
@jwt_required()
@per_user("RATELIMIT_PASSWORD_CHECK", PASSWORD_CHECKS_MESSAGE)
def reauthenticate(data: dict[str, Any]) -> AccessToken:
    """Step-up: a fresh access token for this session.

    The password, plus a code or recovery code when two-factor sign-in is on; or
    a passkey alone (options from ``POST /auth/reauthenticate/passkey/options``).
    For a client holding a refreshed (non-fresh) token that needs a fresh-only
    action. A wrong password, code or passkey is 403.
    """
    proof = Proof(data.get("code"), data.get("recovery_code"), data.get("passkey"))
    return AuthService.from_app().reauthenticate(
        current_user, current_session_id(), data.get("password"), proof
    )


@blp.route("/refresh", methods=["POST"])
@problems(blp, 401, 403, 422, 429)
@rate_limit("RATELIMIT_REFRESH")
@blp.doc(security=BEARER_OR_COOKIE)
@blp.arguments(TransportSchema, location="headers", as_kwargs=True)
@blp.response(200, TokenSchema)
@cookies.refresh_token_required
def refresh(transport: str | None = None) -> Any:
    """Rotate the refresh token (the bearer token, or the cookie).

    Returns a new (non-fresh) access token and a new refresh token; the one sent is
    spent. Sending a spent refresh token again revokes its whole session. With the
    cookie: ``X-CSRF-Token`` and a trusted ``Origin`` are required (403), and the new
    refresh token is set as the cookie again.
    """
    tokens = AuthService.from_app().refresh(current_user, current_session_id(), get_jwt()["jti"])
    # A token that arrived as a cookie leaves as one, whatever the header says.
    if get_jwt_request_location() == "cookies":
        transport = cookies.COOKIE_TRANSPORT
    return cookies.deliver(tokens, transport)


@blp.route("/logout", methods=["POST"])
@problems(blp, 401, 403)
@blp.doc(security=BEARER_OR_COOKIE)
@blp.response(204)
@cookies.access_token_or_refresh_cookie
def logout() -> None:
    """Revoke this session: the access token used and its refresh token family.

    Takes the access token, or (no Authorization header) the refresh cookie with
    ``X-CSRF-Token`` and a trusted ``Origin``. Clears both cookies.
    """
    AuthService.from_app().logout(current_user, current_session_id())
    cookies.clear_cookies()


@blp.route("/logout-all", methods=["POST"])
@problems(blp, 401)
@blp.doc(security=BEARER)
@blp.response(204)
@jwt_required()
def logout_all() -> None:
    """Revoke every session of the user, this one included; clears both cookies."""
    AuthService.from_app().logout_everywhere(current_user)
    cookies.clear_cookies()


@blp.route("/sessions")
@problems(blp, 401)
@blp.doc(security=BEARER)
@blp.response(200, SessionSchema(many=True))
@jwt_required()
def list_sessions() -> list[Any]:
    """The user's live sessions, newest first."""
    return AuthService.from_app().list_sessions(current_user)


@blp.route("/sessions/<uuid:session_id>", methods=["DELETE"])
@problems(blp, 401, 404)
@blp.doc(security=BEARER)
@blp.response(204)
@jwt_required()
def revoke_session(session_id: Any) -> None:
    """Revoke one of the user's sessions (404 for any other id)."""
    AuthService.from_app().revoke_session(current_user, str(session_id))


@blp.route("/password-reset", methods=["POST"])
@problems(blp, 422, 429)
@rate_limit("RATELIMIT_PASSWORD_RESET", message="Too many reset requests from this address.")
@blp.arguments(PasswordResetRequestSchema)
@blp.response(202, MessageSchema)
def request_password_reset(data: dict[str, str]) -> dict[str, str]:
    """Email a password-reset link.

    The answer is the same whether or not the account exists.
    """
    AccountService.from_app().request_password_reset(data["email"])
    return RESET_REQUESTED


@blp.route("/password-reset/confirm", methods=["POST"])
@problems(blp, 422)
@blp.arguments(PasswordResetConfirmSchema)
@blp.response(204)
def confirm_password_reset(data: dict[str, str]) -> None:
    """Set a new password with a reset token; ends every session (log in again)."""
    AccountService.from_app().reset_password(data["token"], data["new_password"])


@blp.route("/verify-email", methods=["POST"])
@problems(blp, 422)
@blp.arguments(VerifyEmailSchema)
@blp.response(200, UserSchema)
def verify_email(data: dict[str, str]) -> User:
    """Confirm the email address with the token sent to it."""
    return AccountService.from_app().verify_email(data["token"])


@blp.route("/verify-email/resend", methods=["POST"])
@problems(blp, 401, 409, 429)
@blp.doc(security=BEARER)
@blp.response(202, MessageSchema)
@jwt_required()
# Per user: each call mails an address of the caller's choosing.
@per_user("RATELIMIT_VERIFY_RESEND", "Too many verification emails; try again later.")
def resend_verification() -> dict[str, str]:
    """Send a new verification email (409 when already verified)."""
    AccountService.from_app().resend_verification(current_user)
    return {"detail": "A verification email has been sent."}
