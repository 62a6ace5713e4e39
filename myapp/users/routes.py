from __future__ import annotations

from flask_jwt_extended import current_user, get_jwt, jwt_required
from flask_smorest import Blueprint

from myapp.auth.decorators import BEARER, admin_required
from myapp.auth.tokens import SESSION_CLAIM
from myapp.services import account_service, user_service
from myapp.users.schemas import PasswordChangeSchema, UserSchema

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="User accounts.")


@blp.route("/me")
@blp.doc(security=BEARER)
@blp.response(200, UserSchema)
@jwt_required()
def get_me():
    """The account the access token belongs to."""
    return current_user


@blp.route("/me/password", methods=["PUT"])
@blp.doc(security=BEARER)
@blp.arguments(PasswordChangeSchema)
@blp.response(204)
# Fresh: a stolen long-lived session must not be enough to take the account over.
@jwt_required(fresh=True)
def change_password(data):
    """Change the password (fresh access token: from a login, not a refresh).

    Every other session of the user is revoked; this one continues.
    """
    account_service().change_password(
        current_user,
        data["current_password"],
        data["new_password"],
        keep_session=get_jwt()[SESSION_CLAIM],
    )


@blp.route("/<int:user_id>")
@blp.doc(security=BEARER)
@blp.response(200, UserSchema)
@admin_required
def get_user(user_id: int):
    """One account by id (administrators only)."""
    return user_service().get(user_id)
