from __future__ import annotations

from functools import wraps

from flask_jwt_extended import current_user, get_jwt, jwt_required

from myapp.auth.tokens import FreshTokenRequired
from myapp.errors import Forbidden

# OpenAPI security requirement for endpoints that take a bearer access token.
BEARER = [{"bearerAuth": []}]


def admin_required(view):
    """A valid access token of an active administrator; 403 for anyone else."""

    @wraps(view)
    @jwt_required()
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            raise Forbidden("Administrator rights are required.")
        return view(*args, **kwargs)

    return wrapper


def require_fresh_token() -> None:
    """Inside a ``jwt_required`` view: refuse a token that came from a refresh.

    For changes that hand the account over (such as its email address), a stolen
    long-lived refresh token must not be enough.
    """
    if not get_jwt().get("fresh"):
        raise FreshTokenRequired()
