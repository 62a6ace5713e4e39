"""Users' HTTP API: thin views; decorators declare auth, input and output, the body
calls one use case."""

from __future__ import annotations

import json
from typing import Any

from flask_jwt_extended import current_user, get_current_user, jwt_required
from marshmallow import RAISE
from sqlalchemy.engine import Row

from myapp.access import (
    BEARER,
    PASSWORD_CHECKS_MESSAGE,
    admin_required,
    current_session_id,
    require_fresh_token,
)
from myapp.openapi import Blueprint, problems
from myapp.ratelimit import per_user, rate_limit
from myapp.users.models import User
from myapp.users.repository import UserSearch
from myapp.users.schemas import (
    AccountDeletionSchema,
    AdminUserUpdateSchema,
    EmailChangeConfirmSchema,
    PaginationHeaderSchema,
    PasswordChangeSchema,
    ProfileUpdateSchema,
    UserListQuerySchema,
    UserSchema,
)
from myapp.users.service import UserPage, UserService

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="User accounts.")

PAGINATION_HEADER = {
    "X-Pagination": {
        "description": "Pagination metadata (JSON).",
        "schema": PaginationHeaderSchema,
    }
}


def pagination_header(page: UserPage) -> dict[str, str]:
    last = page.total_pages
    meta: dict[str, int] = {
        "total": page.total,
        "total_pages": last,
        "page": page.page,
        "per_page": page.per_page,
        "first_page": 1,
        "last_page": last,
    }
    if page.page > 1:
        meta["previous_page"] = min(page.page - 1, last)
    if page.page < last:
        meta["next_page"] = page.page + 1
    return {"X-Pagination": json.dumps(meta)}


@blp.route("/me")
@problems(blp, 401)
@blp.doc(security=BEARER)
@blp.response(200, UserSchema)
@jwt_required()
def get_me() -> User:
    """The account the access token belongs to."""
    # The object itself: serialising through the proxy costs a lookup per field.
    user: User = get_current_user()
    return user


@blp.route("/me", methods=["PATCH"])
@problems(blp, 401, 409, 422, 429)
@blp.doc(security=BEARER)
@blp.arguments(ProfileUpdateSchema)
@blp.response(200, UserSchema)
@blp.alt_response(
    202, schema=UserSchema, description="A new email address waits for its confirmation link."
)
@jwt_required()
# Per user: a 409 tells whether an email or username is taken (as registration does).
@per_user("RATELIMIT_PROFILE_UPDATE", "Too many profile changes; try again later.")
def update_me(data: dict[str, Any]) -> tuple[User, int]:
    """Change your username and/or email (only these fields).

    A username changes at once (200). A new email address needs a fresh access
    token and changes only once the link sent there is opened: 202, with the
    address in ``pending_email`` meanwhile.
    """
    if "email" in data:
        require_fresh_token()
    user = UserService.from_app().update_profile(current_user, data)
    pending = "email" in data and data["email"] != user.email
    return user, 202 if pending else 200


@blp.route("/me/email/confirm", methods=["POST"])
@problems(blp, 400, 409, 422, 429)
@rate_limit("RATELIMIT_EMAIL_CONFIRM", message="Too many confirmations from this address.")
@blp.arguments(EmailChangeConfirmSchema)
@blp.response(200, UserSchema)
def confirm_email_change(data: dict[str, str]) -> User:
    """Confirm a new email address with the token sent to it.

    No login needed: the token proves the mailbox. Every session ends; the old
    address is told.
    """
    return UserService.from_app().confirm_email_change(data["token"])


@blp.route("/me", methods=["DELETE"])
@problems(blp, 401, 403, 422, 429)
@blp.doc(security=BEARER)
@blp.arguments(AccountDeletionSchema)
@blp.response(204)
@jwt_required()
@per_user("RATELIMIT_PASSWORD_CHECK", PASSWORD_CHECKS_MESSAGE)
def delete_me(data: dict[str, str]) -> None:
    """Delete your account, its sessions and tokens (the password confirms it)."""
    UserService.from_app().delete_account(current_user, data["password"])


@blp.route("/me/password", methods=["PUT"])
@problems(blp, 401, 403, 422, 429)
@blp.doc(security=BEARER)
@blp.arguments(PasswordChangeSchema)
@blp.response(204)
# Fresh: a stolen long-lived session must not be enough to take the account over.
@jwt_required(fresh=True)
@per_user("RATELIMIT_PASSWORD_CHECK", PASSWORD_CHECKS_MESSAGE)
def change_password(data: dict[str, str]) -> None:
    """Change the password (fresh access token: from a login, not a refresh).

    Every other session of the user is revoked; this one continues.
    """
    UserService.from_app().change_password(
        current_user,
        data["current_password"],
        data["new_password"],
        keep_session=current_session_id(),
    )


@blp.route("")
@problems(blp, 401, 403, 422)
@blp.doc(security=BEARER)
# unknown=RAISE: a misspelt filter must be a 422, not silently "all users".
@blp.arguments(UserListQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, UserSchema(many=True), headers=PAGINATION_HEADER)
@admin_required
def list_users(**criteria: Any) -> tuple[list[Row[Any]], int, dict[str, str]]:
    """List users (administrators only): filters, ordering, pagination.

    Pagination metadata is in the ``X-Pagination`` header.
    """
    page = UserService.from_app().search(UserSearch(**criteria))
    return page.items, 200, pagination_header(page)


@blp.route("/<int:user_id>")
@problems(blp, 401, 403, 404)
@blp.doc(security=BEARER)
@blp.response(200, UserSchema)
@admin_required
def get_user(user_id: int) -> User:
    """One account by id (administrators only)."""
    return UserService.from_app().get(user_id)


@blp.route("/<int:user_id>", methods=["PATCH"])
@problems(blp, 401, 403, 404, 409, 422)
@blp.doc(security=BEARER)
@blp.arguments(AdminUserUpdateSchema)
@blp.response(200, UserSchema)
@admin_required
def update_user(data: dict[str, Any], user_id: int) -> User:
    """Change a user's username, email, active or admin flag (administrators only).

    Deactivating or demoting revokes the user's sessions at once. Administrators
    cannot deactivate or demote themselves (409). Changing an email or granting
    admin needs a fresh access token.
    """
    # As for /users/me: whoever changes where reset links go, or who is an
    # administrator, hands accounts over, so a stolen refreshed session must not do it.
    if "email" in data or data.get("is_admin") is True:
        require_fresh_token()
    return UserService.from_app().admin_update(current_user, user_id, data)


@blp.route("/<int:user_id>", methods=["DELETE"])
@problems(blp, 401, 403, 404, 409)
@blp.doc(security=BEARER)
@blp.response(204)
@admin_required
def delete_user(user_id: int) -> None:
    """Delete a user (administrators only; not yourself: 409)."""
    UserService.from_app().admin_delete(current_user, user_id)
