"""Issuing tokens: an access and a refresh token bound to a user's token version
and to a session. (Checking them is ``bearer.py``'s.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token

from myapp.access import SESSION_CLAIM
from myapp.auth.models import AuthSession
from myapp.users.models import User

__all__ = ["SESSION_CLAIM", "TOKEN_VERSION_CLAIM", "TokenPair", "TokenService"]

# Bumping the user's token_version invalidates every token that carries an older one.
TOKEN_VERSION_CLAIM = "ver"  # noqa: S105 - a claim's name, not a secret


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - RFC 6750's type name, not a secret


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
