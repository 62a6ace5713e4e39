"""The bearer check, top to bottom: from a token flask-jwt-extended has verified to
the user it speaks for, and every failure as a 401 problem.

On each authenticated request:
1. flask-jwt-extended checks the signature (HS256 only), issuer, audience, expiry,
   type and freshness; its failures land in the answers at the bottom of this file;
2. ``load_user`` parses our claims (``sub``, ``ver``, ``sid``) and guards the id;
3. one prebuilt SELECT, in one round trip outside the session's transaction
   (``first_row``), checks everything revocable at once: the user is active, the
   token is of the user's current ``token_version`` (bumped by logout-all and
   password reset), its session is live (revoked by logout, reuse detection,
   password changes);
4. the row is attached to the session as a loaded ``User`` without a query
   (``attach_loaded``), so services can change it like any loaded user.

It runs here, in the user loader, not in flask-jwt-extended's blocklist hook: that
hook runs before the view and would stop a spent refresh token before the refresh
view could detect the reuse and revoke the family.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_jwt_extended import JWTManager
from sqlalchemy import bindparam, select

from myapp.access import SESSION_CLAIM, FreshTokenRequired
from myapp.auth.models import AuthSession
from myapp.auth.tokens import TOKEN_VERSION_CLAIM
from myapp.database.columns import utcnow
from myapp.database.reads import attach_loaded, first_row
from myapp.errors import handle_app_error, problem
from myapp.extensions import db
from myapp.users.models import MAX_ID, User

# Built once: it runs on every authenticated request, and building the statement
# (not running it) was a third of the lookup's time. Columns, not the entity: it
# runs outside the ORM session (see first_row).
_USER_FOR_TOKEN = (
    select(*User.__table__.columns)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        User.is_active.is_(True),
        User.token_version == bindparam("version"),
        AuthSession.id == bindparam("session_id"),
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > bindparam("now"),
    )
)


def load_user(jwt_header: dict[str, Any], jwt_data: dict[str, Any]) -> User | None:
    """The user a valid token speaks for, or None (-> 401). Runs on every request."""
    try:
        user_id = int(jwt_data["sub"])
        version = int(jwt_data[TOKEN_VERSION_CLAIM])
        session_id = str(jwt_data[SESSION_CLAIM])
    except (KeyError, TypeError, ValueError):
        return None
    if not 0 < user_id <= MAX_ID:
        return None  # no such id can exist; PostgreSQL would raise on the comparison
    row = first_row(
        _USER_FOR_TOKEN,
        {"user_id": user_id, "session_id": session_id, "version": version, "now": utcnow()},
    )
    return None if row is None else attach_loaded(db.session, User, row)


# -- failure answers: every token problem is a 401 problem+json ---------------
# (flask-jwt-extended answers several with 422 by default)


def _unauthorized(detail: str, error: str | None = "invalid_token") -> Response:
    challenge = 'Bearer realm="myapp"'
    if error:
        # RFC 6750 section 3: say why, so clients know to re-authenticate.
        challenge += f', error="{error}"'
    return problem(401, detail, headers={"WWW-Authenticate": challenge})


def _missing(reason: str) -> Response:
    # No credentials at all: RFC 6750 says no error code in the challenge.
    return _unauthorized("Missing bearer token.", error=None)


def _invalid(reason: str) -> Response:
    return _unauthorized("Invalid token.")


def _expired(jwt_header: dict[str, Any], jwt_data: dict[str, Any]) -> Response:
    return _unauthorized("Token has expired.")


def _not_fresh(jwt_header: dict[str, Any], jwt_data: dict[str, Any]) -> Response:
    return handle_app_error(FreshTokenRequired())


def _no_user(jwt_header: dict[str, Any], jwt_data: dict[str, Any]) -> Response:
    # Generic on purpose: never confirm whether that user id exists.
    return _unauthorized("Token is no longer valid.")


def install(manager: JWTManager) -> None:
    """Make ``manager`` run this check and answer its failures as above."""
    manager.user_lookup_loader(load_user)
    manager.unauthorized_loader(_missing)
    manager.invalid_token_loader(_invalid)
    manager.expired_token_loader(_expired)
    manager.needs_fresh_token_loader(_not_fresh)
    manager.user_lookup_error_loader(_no_user)
