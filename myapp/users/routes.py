from __future__ import annotations

from flask_jwt_extended import current_user, jwt_required
from flask_smorest import Blueprint

from myapp.auth.decorators import BEARER, admin_required
from myapp.users.repository import UserRepository
from myapp.users.schemas import UserSchema
from myapp.users.service import UserService

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="User accounts.")


@blp.route("/me")
@blp.doc(security=BEARER)
@blp.response(200, UserSchema)
@jwt_required()
def get_me():
    """The account the access token belongs to."""
    return current_user


@blp.route("/<int:user_id>")
@blp.doc(security=BEARER)
@blp.response(200, UserSchema)
@admin_required
def get_user(user_id: int):
    """One account by id (administrators only)."""
    return UserService(UserRepository()).get(user_id)
