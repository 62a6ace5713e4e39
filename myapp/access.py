"""Who may call a view: the bearer-token requirements that routes of every domain
declare, and the caller's session.

Shared by the domains (users' routes use it and must not import auth). The check
of the token itself, down to the user it speaks for, is auth's: ``auth/bearer.py``
installs it on flask-jwt-extended, whose ``jwt_required`` runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask_jwt_extended import current_user, get_jwt, jwt_required

from myapp.errors import Forbidden, Unauthorized

F = TypeVar("F", bound=Callable[..., Any])

# OpenAPI security requirement for endpoints that take a bearer access token.
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
# The claim naming the session (refresh-token family) a token belongs to.
SESSION_CLAIM = "sid"


class FreshTokenRequired(Unauthorized):
    detail = "A fresh token is required: log in again."
    headers = {"WWW-Authenticate": 'Bearer realm="myapp", error="invalid_token"'}


def admin_required(view: F) -> F:
    """A valid access token of an active administrator; 403 for anyone else."""

    @wraps(view)
    @jwt_required()
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            raise Forbidden("Administrator rights are required.")
        return view(*args, **kwargs)

    return cast(F, wrapper)


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
