"""Bad input, sent to every JSON endpoint: a clear 4xx problem+json, nothing changed,
never a 500 (on SQLite and PostgreSQL alike)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from myapp.auth.models import (
    ActionToken,
    AuthSession,
    MfaChallenge,
    Passkey,
    RecoveryCode,
    TotpCredential,
    WebAuthnChallenge,
)
from myapp.extensions import db
from myapp.outbox.models import OutboxMessage
from myapp.users.models import User
from tests.factories import DEFAULT_PASSWORD
from tests.support.passkeys import UNISSUED_ASSERTION, UNISSUED_REGISTRATION
from tests.support.problems import assert_problem

NEW_PASSWORD = "a brand new passphrase"

# (method, path, who calls it, a valid body, the maximum length of each string field)
JSON_ENDPOINTS = [
    (
        "POST",
        "/api/v1/auth/register",
        None,
        {"email": "new@example.com", "username": "newbie", "password": NEW_PASSWORD},
        {"email": 254, "username": 50, "password": 128},
    ),
    (
        "POST",
        "/api/v1/auth/login",
        None,
        {"email": "ada@example.com", "password": DEFAULT_PASSWORD},
        {"email": 254, "password": 1024},
    ),
    ("POST", "/api/v1/auth/password-reset", None, {"email": "ada@example.com"}, {"email": 254}),
    (
        "POST",
        "/api/v1/auth/password-reset/confirm",
        None,
        {"token": "t" * 43, "new_password": NEW_PASSWORD},
        {"token": 256, "new_password": 128},
    ),
    ("POST", "/api/v1/auth/verify-email", None, {"token": "t" * 43}, {"token": 256}),
    ("POST", "/api/v1/users/me/email/confirm", None, {"token": "t" * 43}, {"token": 256}),
    ("PATCH", "/api/v1/users/me", "user", {"username": "renamed"}, {"username": 50}),
    ("DELETE", "/api/v1/users/me", "user", {"password": DEFAULT_PASSWORD}, {"password": 1024}),
    (
        "PUT",
        "/api/v1/users/me/password",
        "user",
        {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        {"current_password": 1024, "new_password": 128},
    ),
    ("PATCH", "/api/v1/users/{target}", "admin", {"username": "renamed"}, {"username": 50}),
    (
        "POST",
        "/api/v1/auth/login/mfa",
        None,
        {"mfa_token": "t" * 43, "code": "123456"},
        {"mfa_token": 256, "code": 6},
    ),
    (
        "POST",
        "/api/v1/auth/login/mfa",
        None,
        {"mfa_token": "t" * 43, "recovery_code": "AAAA-BBBB-CCCC"},
        {"recovery_code": 64},
    ),
    (
        "POST",
        "/api/v1/auth/reauthenticate",
        "user",
        {"password": DEFAULT_PASSWORD},
        {"password": 1024},
    ),
    ("POST", "/api/v1/auth/mfa/totp/confirm", "user", {"code": "123456"}, {"code": 6}),
    (
        "POST",
        "/api/v1/auth/passkeys/register",
        "user",
        {"name": "Laptop", "credential": UNISSUED_REGISTRATION},
        {"name": 64},
    ),
    (
        "PATCH",
        "/api/v1/auth/passkeys/6f1c2a52-9a43-4a56-8f5e-0d2b4c3e7a10",
        "user",
        {"name": "Laptop"},
        {"name": 64},
    ),
    ("POST", "/api/v1/auth/passkeys/login", None, {"credential": UNISSUED_ASSERTION}, {}),
    (
        "POST",
        "/api/v1/auth/login/mfa/passkey/options",
        None,
        {"mfa_token": "t" * 43},
        {"mfa_token": 256},
    ),
    (
        "DELETE",
        "/api/v1/auth/mfa/totp",
        "user",
        {"recovery_code": "AAAA-BBBB-CCCC"},
        {"recovery_code": 64},
    ),
]
IDS = [f"{method} {path}" for method, path, *_ in JSON_ENDPOINTS]
DEEP = b"[" * 50_000 + b"]" * 50_000


def fingerprint() -> str:
    """A digest of every row the API can change."""
    db.session.expire_all()
    rows = [
        repr(
            [
                tuple(vars(row)[k] for k in sorted(vars(row)) if not k.startswith("_"))
                for row in db.session.scalars(
                    select(model).order_by(*model.__table__.primary_key.columns)
                )
            ]
        )
        for model in (
            User,
            AuthSession,
            ActionToken,
            OutboxMessage,
            TotpCredential,
            RecoveryCode,
            MfaChallenge,
            Passkey,
            WebAuthnChallenge,
        )
    ]
    return hashlib.sha256("".join(rows).encode()).hexdigest()


@pytest.fixture
def call(client, auth, user, admin_user):
    """Send a raw request to an endpoint as its caller would."""
    headers = {"user": auth.headers_for(user), "admin": auth.headers_for(admin_user)}

    def send(method, path, caller, **kwargs):
        url = path.format(target=user.id)
        extra = dict(headers.get(caller, {}), **kwargs.pop("headers", {}))
        return client.open(url, method=method, headers=extra, **kwargs)

    return send


RAW_CASES = [
    ("missing-content-type", {"data": b'{"a": 1}'}, 415),
    ("text-plain", {"data": b'{"a": 1}', "content_type": "text/plain"}, 415),
    ("form", {"data": {"a": "1"}}, 415),
    ("empty-json-body", {"data": b"", "content_type": "application/json"}, 422),
    ("malformed-json", {"data": b'{"a": ', "content_type": "application/json"}, 400),
    ("invalid-utf8", {"data": b'{"a": "\xff\xfe"}', "content_type": "application/json"}, 400),
    ("array", {"json": [1, 2]}, 422),
    ("null", {"data": b"null", "content_type": "application/json"}, 422),
    ("string", {"json": "text"}, 422),
    ("number", {"json": 7}, 422),
    ("nested-50000", {"data": DEEP, "content_type": "application/json"}, 400),
    ("over-1-mib", {"data": b" " * (1024 * 1024 + 1), "content_type": "application/json"}, 413),
]


@pytest.mark.parametrize(
    ("name", "request_kwargs", "status"), RAW_CASES, ids=[case[0] for case in RAW_CASES]
)
@pytest.mark.parametrize(("method", "path", "caller", "valid", "limits"), JSON_ENDPOINTS, ids=IDS)
def test_body_when_malformed_returns_4xx_and_changes_nothing(
    call, method, path, caller, valid, limits, name, request_kwargs, status
):
    before = fingerprint()

    response = call(method, path, caller, **request_kwargs)

    assert_problem(response, status)
    assert fingerprint() == before


@pytest.mark.parametrize(("method", "path", "caller", "valid", "limits"), JSON_ENDPOINTS, ids=IDS)
class TestFieldValues:
    def test_body_when_unknown_field_added_returns_422_naming_it(
        self, call, method, path, caller, valid, limits
    ):
        before = fingerprint()

        response = call(method, path, caller, json={**valid, "password_hash": "x"})

        assert assert_problem(response, 422)["errors"]["json"]["password_hash"]
        assert fingerprint() == before

    def test_body_when_required_fields_missing_returns_422(
        self, call, method, path, caller, valid, limits
    ):
        before = fingerprint()

        response = call(method, path, caller, json={})

        assert assert_problem(response, 422)["errors"]["json"]
        assert fingerprint() == before

    @pytest.mark.parametrize("bad", [None, 42, True, [], {}], ids=repr)
    def test_body_when_field_has_wrong_type_returns_422(
        self, call, method, path, caller, valid, limits, bad
    ):
        before = fingerprint()
        for field in limits:
            response = call(method, path, caller, json={**valid, field: bad})

            assert field in assert_problem(response, 422)["errors"]["json"]
        assert fingerprint() == before

    def test_body_when_string_over_column_length_returns_422_on_every_database(
        self, call, method, path, caller, valid, limits
    ):
        before = fingerprint()
        for field, limit in limits.items():
            response = call(method, path, caller, json={**valid, field: "a" * (limit + 1)})

            assert field in assert_problem(response, 422)["errors"]["json"], field
        assert fingerprint() == before

    def test_body_when_text_holds_nul_returns_422_never_500(
        self, call, method, path, caller, valid, limits
    ):
        before = fingerprint()
        for field in limits:
            value = valid[field][:5] + "\x00" + valid[field][5:]
            response = call(method, path, caller, json={**valid, field: value})

            assert field in assert_problem(response, 422)["errors"]["json"], field
        assert fingerprint() == before


class TestInjectionLookingInput:
    @pytest.mark.parametrize(
        "email", ["' OR '1'='1", "ada@example.com' --", 'ada@example.com"; DROP TABLE users;--']
    )
    def test_login_when_email_is_sql_is_plain_data(self, client, user, email):
        response = client.post(
            "/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD}
        )

        # Looked up as a literal string: no account matches, nobody is logged in.
        assert response.status_code == 401
        assert response.get_json()["detail"] == "Invalid credentials"
        assert db.session.scalar(select(func.count()).select_from(AuthSession)) == 0
        assert db.session.get(User, user.id) is not None

    def test_search_when_q_is_sql_finds_nothing_and_drops_nothing(
        self, client, user, admin_headers
    ):
        response = client.get(
            "/api/v1/users",
            query_string={"q": "' OR 1=1; DROP TABLE users; --"},
            headers=admin_headers,
        )

        assert (response.status_code, response.get_json()) == (200, [])
        assert db.session.get(User, user.id) is not None

    def test_register_when_email_local_part_has_quote_stores_it_verbatim(self, client):
        response = client.post(
            "/api/v1/auth/register",
            json={"email": "o'brien@example.com", "username": "obrien", "password": NEW_PASSWORD},
        )

        assert response.status_code == 201
        assert db.session.scalar(select(User.email).where(User.username == "obrien")) == (
            "o'brien@example.com"
        )


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/auth/login", "POST"),
        ("GET", "/api/v1/auth/register", "POST"),
        ("DELETE", "/health", "GET"),
        ("POST", "/api/v1/users/me", "GET"),
        ("PUT", "/api/v1/users/1", "GET"),
    ],
)
def test_method_when_unsupported_returns_405_with_allow(client, method, path, allowed):
    response = client.open(path, method=method)

    assert_problem(response, 405)
    assert allowed in response.headers["Allow"]
