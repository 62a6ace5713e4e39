"""Who may call a view: the bearer-token requirements that routes of every domain
declare, and the caller's session.

Shared by the domains (users' routes use it and must not import auth). The check
of the token itself, down to the user it speaks for, is auth's: ``auth/bearer.py``
installs it on flask-jwt-extended, whose ``jwt_required`` runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import current_app
from flask_jwt_extended import current_user, get_jwt, jwt_required

from myapp.errors import Forbidden, Unauthorized

P = ParamSpec("P")
R = TypeVar("R")

# OpenAPI security requirement for endpoints that take a bearer access token.
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
# Shared by every endpoint that checks the current password (RATELIMIT_PASSWORD_CHECK,
# per user): each check is an argon2 hash (CPU and memory) and a guess at the password.
PASSWORD_CHECKS_MESSAGE = "Too many password checks; try again later."  # noqa: S105
# The claim naming the session (refresh-token family) a token belongs to.
SESSION_CLAIM = "sid"


class FreshTokenRequired(Unauthorized):
    detail = "A fresh token is required: log in again."
    headers = {"WWW-Authenticate": 'Bearer realm="myapp", error="invalid_token"'}


class SecondFactorRequired(Forbidden):
    detail = (
        "Administrators must use two-factor sign-in: enrol an authenticator app "
        "(POST /api/v1/auth/mfa/totp/setup) or a passkey (POST "
        "/api/v1/auth/passkeys/register/options) before using admin endpoints."
    )


def admin_required(view: Callable[P, R]) -> Callable[P, R]:
    """A valid access token of an active administrator; 403 for anyone else, and
    (``MFA_REQUIRED_FOR_ADMINS``) for an administrator without a second factor."""

    @wraps(view)
    @jwt_required()
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not current_user.is_admin:
            raise Forbidden("Administrator rights are required.")
        # An admin account opens every account: a password alone must not be enough.
        if current_app.config["MFA_REQUIRED_FOR_ADMINS"] and not current_user.is_mfa_enabled:
            raise SecondFactorRequired()
        return view(*args, **kwargs)

    return wrapper


def require_fresh_token() -> None:
    """Inside a ``jwt_required`` view: refuse a token that came from a refresh.

    For changes that hand the account over (such as its email address), a stolen
    long-lived refresh token must not be enough.
    """
    if not get_jwt().get("fresh"):
        raise FreshTokenRequired()


def current_session_id() -> str:
    """Inside a ``jwt_required`` view: the session the caller's token belongs to."""
    return str(get_jwt()[SESSION_CLAIM])
