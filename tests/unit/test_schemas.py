"""Input is normalised once, at the schema: services receive the stored form."""

from __future__ import annotations

import pytest

from myapp.auth.schemas import LoginSchema, PasswordResetRequestSchema, RegisterSchema
from myapp.users.schemas import AdminUserUpdateSchema, ProfileUpdateSchema

PASSWORD = "a long password!"


class TestIdentifiersAreNormalised:
    @pytest.mark.parametrize(
        ("schema", "body", "expected"),
        [
            (
                RegisterSchema(),
                {"email": "  Ada@Example.COM ", "username": " Ada ", "password": PASSWORD},
                {"email": "ada@example.com", "username": "ada", "password": PASSWORD},
            ),
            (
                LoginSchema(),
                {"email": " ADA@example.com", "password": PASSWORD},
                {"email": "ada@example.com", "password": PASSWORD},
            ),
            (
                LoginSchema(),
                {"username": " Ada ", "password": PASSWORD},
                {"username": "ada", "password": PASSWORD},
            ),
            (
                PasswordResetRequestSchema(),
                {"email": " ADA@example.com "},
                {"email": "ada@example.com"},
            ),
            (
                ProfileUpdateSchema(),
                {"email": "New@Example.com", "username": " Lovelace "},
                {"email": "new@example.com", "username": "lovelace"},
            ),
            (
                AdminUserUpdateSchema(),
                {"username": "GRACE", "is_admin": True},
                {"username": "grace", "is_admin": True},
            ),
        ],
        ids=["register", "login-email", "login-username", "reset", "profile", "admin-update"],
    )
    def test_load_when_identifiers_have_case_and_spaces_returns_stored_form(
        self, app, schema, body, expected
    ):
        assert schema.load(body) == expected

    def test_load_when_password_has_spaces_keeps_it_exactly(self, app):
        loaded = LoginSchema().load({"email": "ada@example.com", "password": "  Pass word  "})

        assert loaded["password"] == "  Pass word  "
