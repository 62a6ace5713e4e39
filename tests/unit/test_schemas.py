"""Input is normalised once, at the schema: services receive the stored form."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from myapp.auth.schemas import (
    LoginSchema,
    MfaLoginSchema,
    PasswordResetRequestSchema,
    ReauthenticateSchema,
    RegisterSchema,
    validate_next,
)
from myapp.users.schemas import AdminUserUpdateSchema, ProfileUpdateSchema
from tests.support.passkeys import UNISSUED_ASSERTION

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


class TestNextPath:
    """Where the browser goes after signing in with a provider: a path on this
    site and nothing else (the open-redirect guard)."""

    @pytest.mark.parametrize(
        "path", ["/account", "/account/sessions?tab=all", "/account?next=https://x.example"]
    )
    def test_next_when_a_path_on_this_site_is_accepted(self, path):
        validate_next(path)  # raises on refusal

    @pytest.mark.parametrize(
        "path",
        [
            "https://evil.example/",  # another site
            "account",  # not a path
            "//evil.example/x",  # scheme-relative: another site
            "/\\evil.example",  # browsers read it as //evil.example
            "/account\\..\\x",  # a backslash anywhere
            "/account\tx",  # unprintable
            "/javascript:alert(1)",  # a colon before the query: looks like a scheme
        ],
    )
    def test_next_when_it_could_leave_the_site_is_refused_with_the_rule(self, path):
        with pytest.raises(ValidationError) as refused:
            validate_next(path)

        assert refused.value.messages == ["Must be a path on this site, such as /account."]


class TestRulesAcrossFields:
    """A body whose fields are each fine but together break a rule: a 422 that
    says which rule."""

    @pytest.mark.parametrize(
        ("schema", "body", "messages"),
        [
            (
                LoginSchema,
                {"email": "ada@example.com", "username": "ada", "password": PASSWORD},
                {"_schema": ["Give exactly one of 'email' or 'username'."]},
            ),
            (
                LoginSchema,
                {"password": PASSWORD},
                {"_schema": ["Give exactly one of 'email' or 'username'."]},
            ),
            (
                ReauthenticateSchema,
                {},
                {"_schema": ["Give exactly one of 'password' or 'passkey'."]},
            ),
            (
                ReauthenticateSchema,
                {"password": PASSWORD, "passkey": UNISSUED_ASSERTION},
                {"_schema": ["Give exactly one of 'password' or 'passkey'."]},
            ),
            (
                ReauthenticateSchema,
                {"passkey": UNISSUED_ASSERTION, "code": "123456"},
                {"_schema": ["A passkey needs no code."]},
            ),
            (
                MfaLoginSchema,
                {"mfa_token": "t", "code": "123456", "recovery_code": "7KQ4-MZ2H-XWT9"},
                {"_schema": ["Give exactly one of 'code', 'recovery_code', 'passkey'."]},
            ),
            (
                MfaLoginSchema,
                {"mfa_token": "t", "code": "12345"},
                {"code": ["Must be the 6 digits the authenticator app shows."]},
            ),
            (ProfileUpdateSchema, {}, {"_schema": ["Give at least one field to change."]}),
        ],
        ids=[
            "login-both",
            "login-neither",
            "reauth-neither",
            "reauth-both",
            "reauth-passkey-and-code",
            "second-step-two-codes",
            "second-step-short-code",
            "profile-empty",
        ],
    )
    def test_load_when_a_rule_is_broken_names_it(self, app, schema, body, messages):
        with pytest.raises(ValidationError) as refused:
            schema().load(body)

        assert refused.value.messages == messages
