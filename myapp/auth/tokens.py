"""Issuing tokens: an access and a refresh token bound to a user's token version
and to a session. (Checking them is ``bearer.py``'s.)"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token

from myapp.access import SESSION_CLAIM
from myapp.auth.models import AuthSession
from myapp.database.columns import utcnow
from myapp.users.models import User

__all__ = ["SESSION_CLAIM", "TOKEN_VERSION_CLAIM", "AccessToken", "TokenPair", "TokenService"]

# Bumping the user's token_version invalidates every token that carries an older one.
TOKEN_VERSION_CLAIM = "ver"  # noqa: S105 - a claim's name, not a secret
CSRF_BYTES = 24  # 192 bits: unguessable by a page on another site


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - RFC 6750's type name, not a secret
    # Seconds the session has left (its refresh token's useful life): a cookie's Max-Age.
    refresh_expires_in: int = 0


@dataclass(frozen=True)
class AccessToken:
    access_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - RFC 6750's type name, not a secret


class TokenService:
    def issue(self, user: User, auth_session: AuthSession, *, fresh: bool) -> TokenPair:
        """An access and a refresh token bound to the user's version and session.

        The refresh token's jti is the one the session expects next; its ``csrf``
        claim is what a browser holding it in a cookie must echo in X-CSRF-Token.
        """
        access = self.issue_access(user, auth_session.id, fresh=fresh)
        claims = {
            **_claims(user, auth_session.id),
            "jti": auth_session.refresh_jti,
            "csrf": secrets.token_urlsafe(CSRF_BYTES),
        }
        remaining = auth_session.expires_at - utcnow()
        return TokenPair(
            access_token=access.access_token,
            refresh_token=create_refresh_token(str(user.id), additional_claims=claims),
            expires_in=access.expires_in,
            refresh_expires_in=max(0, int(remaining.total_seconds())),
        )

    def issue_access(self, user: User, session_id: str, *, fresh: bool) -> AccessToken:
        """An access token alone, for a session that goes on (re-authentication)."""
        lifetime: timedelta = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
        return AccessToken(
            access_token=create_access_token(
                str(user.id), fresh=fresh, additional_claims=_claims(user, session_id)
            ),
            expires_in=int(lifetime.total_seconds()),
        )


def _claims(user: User, session_id: str) -> dict[str, object]:
    # JWT "sub" (the identity) must be a string; these ride along.
    return {TOKEN_VERSION_CLAIM: user.token_version, SESSION_CLAIM: session_id}
