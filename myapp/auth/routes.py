from __future__ import annotations

from flask import request, url_for
from flask_jwt_extended import current_user, get_jwt, jwt_required

from myapp.auth.decorators import BEARER
from myapp.auth.schemas import (
    LoginSchema,
    MessageSchema,
    PasswordResetConfirmSchema,
    PasswordResetRequestSchema,
    RegisterSchema,
    SessionSchema,
    TokenSchema,
    VerifyEmailSchema,
)
from myapp.auth.service import ClientInfo
from myapp.auth.tokens import SESSION_CLAIM
from myapp.openapi import Blueprint, problems
from myapp.ratelimit import failed_authentication, login_account, rate_limit
from myapp.services import account_service, auth_service
from myapp.users.schemas import UserSchema

blp = Blueprint(
    "auth",
    __name__,
    url_prefix="/api/v1/auth",
    description="Registration, login, sessions and account recovery.",
)

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
def register(data):
    """Create an account and send a verification email.

    The email is stored trimmed and lower-cased; email and username are unique
    regardless of letter case.
    """
    user = auth_service().register(**data)
    return user, 201, {"Location": url_for("users.get_user", user_id=user.id)}


@blp.route("/login", methods=["POST"])
@problems(blp, 401, 422, 429)
@rate_limit("RATELIMIT_LOGIN", message="Too many login attempts from this address.")
# Per account, counting failures only: slows password guessing against one account
# from many addresses, while the owner's successful logins cost nothing.
@rate_limit(
    "RATELIMIT_LOGIN_FAILURES",
    key_func=login_account,
    deduct_when=failed_authentication,
    message="Too many failed logins for this account; try again later.",
)
@blp.arguments(LoginSchema)
@blp.response(200, TokenSchema)
def login(data):
    """Log in: exchange credentials for tokens.

    Takes an email or a username, and the password. Returns a fresh access token
    and a refresh token, and starts a session.
    """
    password = data.pop("password")
    return auth_service().login(password, client=client_info(), **data)


@blp.route("/refresh", methods=["POST"])
@problems(blp, 401, 429)
@rate_limit("RATELIMIT_REFRESH")
@blp.doc(security=BEARER)
@blp.response(200, TokenSchema)
@jwt_required(refresh=True)
def refresh():
    """Rotate the refresh token (send it as the bearer token).

    Returns a new (non-fresh) access token and a new refresh token; the one sent is
    spent. Sending a spent refresh token again revokes its whole session.
    """
    claims = get_jwt()
    return auth_service().refresh(current_user, claims[SESSION_CLAIM], claims["jti"])


@blp.route("/logout", methods=["POST"])
@problems(blp, 401)
@blp.doc(security=BEARER)
@blp.response(204)
@jwt_required()
def logout():
    """Revoke this session: the access token used and its refresh token family."""
    auth_service().logout(current_user, get_jwt()[SESSION_CLAIM])


@blp.route("/logout-all", methods=["POST"])
@problems(blp, 401)
@blp.doc(security=BEARER)
@blp.response(204)
@jwt_required()
def logout_all():
    """Revoke every session of the user, this one included."""
    auth_service().logout_everywhere(current_user)


@blp.route("/sessions")
@problems(blp, 401)
@blp.doc(security=BEARER)
@blp.response(200, SessionSchema(many=True))
@jwt_required()
def list_sessions():
    """The user's live sessions, newest first."""
    return auth_service().list_sessions(current_user)


@blp.route("/sessions/<uuid:session_id>", methods=["DELETE"])
@problems(blp, 401, 404)
@blp.doc(security=BEARER)
@blp.response(204)
@jwt_required()
def revoke_session(session_id):
    """Revoke one of the user's sessions (404 for any other id)."""
    auth_service().revoke_session(current_user, str(session_id))


@blp.route("/password-reset", methods=["POST"])
@problems(blp, 422, 429)
@rate_limit("RATELIMIT_PASSWORD_RESET", message="Too many reset requests from this address.")
@blp.arguments(PasswordResetRequestSchema)
@blp.response(202, MessageSchema)
def request_password_reset(data):
    """Email a password-reset link.

    The answer is the same whether or not the account exists.
    """
    account_service().request_password_reset(data["email"])
    return RESET_REQUESTED


@blp.route("/password-reset/confirm", methods=["POST"])
@problems(blp, 422)
@blp.arguments(PasswordResetConfirmSchema)
@blp.response(204)
def confirm_password_reset(data):
    """Set a new password with a reset token; ends every session (log in again)."""
    account_service().reset_password(data["token"], data["new_password"])


@blp.route("/verify-email", methods=["POST"])
@problems(blp, 422)
@blp.arguments(VerifyEmailSchema)
@blp.response(200, UserSchema)
def verify_email(data):
    """Confirm the email address with the token sent to it."""
    return account_service().verify_email(data["token"])


@blp.route("/verify-email/resend", methods=["POST"])
@problems(blp, 401, 409)
@blp.doc(security=BEARER)
@blp.response(202, MessageSchema)
@jwt_required()
def resend_verification():
    """Send a new verification email (409 when already verified)."""
    account_service().resend_verification(current_user)
    return {"detail": "A verification email has been sent."}
