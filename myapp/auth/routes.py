from __future__ import annotations

from flask import url_for
from flask_smorest import Blueprint

from myapp.auth.schemas import LoginSchema, RegisterSchema, TokenSchema
from myapp.auth.service import AuthService
from myapp.auth.tokens import TokenService
from myapp.extensions import passwords
from myapp.users.repository import UserRepository
from myapp.users.schemas import UserSchema

blp = Blueprint(
    "auth", __name__, url_prefix="/api/v1/auth", description="Registration and login."
)


def auth_service() -> AuthService:
    return AuthService(UserRepository(), passwords, TokenService())


@blp.route("/register", methods=["POST"])
@blp.arguments(RegisterSchema)
@blp.response(201, UserSchema, headers={"Location": {"schema": {"type": "string"}}})
def register(data):
    """Create an account.

    The email is stored trimmed and lower-cased; email and username are unique
    regardless of letter case.
    """
    user = auth_service().register(**data)
    return user, 201, {"Location": url_for("users.get_user", user_id=user.id)}


@blp.route("/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, TokenSchema)
def login(data):
    """Exchange an email (or username) and password for access and refresh tokens."""
    password = data.pop("password")
    return auth_service().login(password, **data)
