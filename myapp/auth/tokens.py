"""JWT issuing and the flask-jwt-extended callbacks.

Every token problem answers 401 problem+json with ``WWW-Authenticate: Bearer``
(flask-jwt-extended answers several with 422 by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token

from myapp.errors import problem
from myapp.users.models import User
from myapp.users.repository import UserRepository

TOKEN_VERSION_CLAIM = "ver"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


class TokenService:
    def issue(self, user: User, *, fresh: bool = True) -> TokenPair:
        claims = {TOKEN_VERSION_CLAIM: user.token_version}
        identity = str(user.id)  # JWT "sub" must be a string
        lifetime: timedelta = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
        return TokenPair(
            access_token=create_access_token(identity, fresh=fresh, additional_claims=claims),
            refresh_token=create_refresh_token(identity, additional_claims=claims),
            expires_in=int(lifetime.total_seconds()),
        )


def load_user_for_token(jwt_header: dict, jwt_data: dict) -> User | None:
    """The user a valid token speaks for, or None (-> 401).

    An inactive user, or a token minted before the user's token_version was bumped,
    loads nothing: that is how every token of a user is revoked at once.
    """
    try:
        user_id = int(jwt_data["sub"])
    except (KeyError, TypeError, ValueError):
        return None
    user = UserRepository().get(user_id)
    if user is None or not user.is_active:
        return None
    if jwt_data.get(TOKEN_VERSION_CLAIM) != user.token_version:
        return None
    return user


def _unauthorized(detail: str, error: str | None = "invalid_token"):
    challenge = 'Bearer realm="myapp"'
    if error:
        # RFC 6750 section 3: say why, so clients know to re-authenticate.
        challenge += f', error="{error}"'
    return problem(401, detail, headers={"WWW-Authenticate": challenge})


def configure_jwt(manager: JWTManager) -> None:
    manager.user_lookup_loader(load_user_for_token)

    @manager.unauthorized_loader
    def _missing(reason: str):
        # No credentials at all: RFC 6750 says no error code in the challenge.
        return _unauthorized("Missing bearer token.", error=None)

    @manager.invalid_token_loader
    def _invalid(reason: str):
        return _unauthorized("Invalid token.")

    @manager.expired_token_loader
    def _expired(jwt_header: dict, jwt_data: dict):
        return _unauthorized("Token has expired.")

    @manager.user_lookup_error_loader
    def _no_user(jwt_header: dict, jwt_data: dict):
        # Generic on purpose: never confirm whether that user id exists.
        return _unauthorized("Token is no longer valid.")
