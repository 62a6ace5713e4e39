"""JWT issuing and the flask-jwt-extended callbacks.

Every token problem answers 401 problem+json with ``WWW-Authenticate: Bearer``
(flask-jwt-extended answers several with 422 by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token

from myapp.auth.models import AuthSession
from myapp.auth.repository import SessionRepository
from myapp.database import utcnow
from myapp.errors import Unauthorized, handle_app_error, problem
from myapp.users.models import User
from myapp.users.repository import MAX_ID

TOKEN_VERSION_CLAIM = "ver"
SESSION_CLAIM = "sid"


class FreshTokenRequired(Unauthorized):
    detail = "A fresh token is required: log in again."
    headers = {"WWW-Authenticate": 'Bearer realm="myapp", error="invalid_token"'}


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


class TokenService:
    def issue(self, user: User, auth_session: AuthSession, *, fresh: bool) -> TokenPair:
        """An access and a refresh token bound to the user's version and session.

        The refresh token's jti is the one the session expects next.
        """
        claims = {TOKEN_VERSION_CLAIM: user.token_version, SESSION_CLAIM: auth_session.id}
        identity = str(user.id)  # JWT "sub" must be a string
        lifetime: timedelta = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
        return TokenPair(
            access_token=create_access_token(identity, fresh=fresh, additional_claims=claims),
            refresh_token=create_refresh_token(
                identity, additional_claims={**claims, "jti": auth_session.refresh_jti}
            ),
            expires_in=int(lifetime.total_seconds()),
        )


def load_user_for_token(jwt_header: dict, jwt_data: dict) -> User | None:
    """The user a valid token speaks for, or None (-> 401). Runs on every request.

    One query checks everything revocable: the user exists and is active, the token
    is of the user's current ``token_version`` (bumped by logout-all), and its
    session is live (revoked by logout, reuse detection, password changes).
    """
    try:
        user_id = int(jwt_data["sub"])
        version = int(jwt_data[TOKEN_VERSION_CLAIM])
        session_id = str(jwt_data[SESSION_CLAIM])
    except (KeyError, TypeError, ValueError):
        return None
    if not 0 < user_id <= MAX_ID:
        return None
    return SessionRepository().find_user_for_token(user_id, session_id, version, utcnow())


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

    @manager.needs_fresh_token_loader
    def _not_fresh(jwt_header: dict, jwt_data: dict):
        return handle_app_error(FreshTokenRequired())

    @manager.user_lookup_error_loader
    def _no_user(jwt_header: dict, jwt_data: dict):
        # Generic on purpose: never confirm whether that user id exists.
        return _unauthorized("Token is no longer valid.")
