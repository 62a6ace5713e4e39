from __future__ import annotations

from functools import wraps

from flask_jwt_extended import current_user, jwt_required

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
