"""Every endpoint x {no token, user, admin} -> the status it must answer.

Bodies are valid, so the status shows the authorization decision alone. A test
also checks the matrix covers every route the app serves.
"""

from __future__ import annotations

import re
import uuid

import pytest

from tests.conftest import session_of
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.passkeys import UNISSUED_ASSERTION, UNISSUED_REGISTRATION

NEW_PASSWORD = "a brand new passphrase"
ROLES = ("none", "user", "admin")

# (method, path template, JSON body, token kind, {role: status})
MATRIX = [
    ("GET", "/health", None, "access", dict(none=200, user=200, admin=200)),
    ("GET", "/ready", None, "access", dict(none=200, user=200, admin=200)),
    ("GET", "/.well-known/jwks.json", None, "access", dict(none=200, user=200, admin=200)),
    ("GET", "/docs", None, "access", dict(none=200, user=200, admin=200)),
    ("GET", "/docs/swagger-ui/{css}", None, "access", dict(none=200, user=200, admin=200)),
    ("GET", "/docs/assets/{js}", None, "access", dict(none=200, user=200, admin=200)),
    # The console's pages are public documents; what they show comes from the API.
    ("GET", "/account", None, "access", dict(none=200, user=200, admin=200)),
    ("GET", "/account/{page}", None, "access", dict(none=200, user=200, admin=200)),
    ("GET", "/account/static/{asset}", None, "access", dict(none=200, user=200, admin=200)),
    (
        "POST",
        "/api/v1/auth/register",
        {"email": "new@example.com", "username": "newbie", "password": NEW_PASSWORD},
        "access",
        dict(none=201, user=201, admin=201),
    ),
    (
        "POST",
        "/api/v1/auth/login",
        {"username": "target", "password": DEFAULT_PASSWORD},
        "access",
        dict(none=200, user=200, admin=200),
    ),
    (
        "POST",
        "/api/v1/auth/login/mfa",
        {"mfa_token": "not-issued", "code": "123456"},
        "access",
        dict(none=401, user=401, admin=401),
    ),
    (
        "POST",
        "/api/v1/auth/reauthenticate",
        {"password": DEFAULT_PASSWORD},
        "access",
        dict(none=401, user=200, admin=200),
    ),
    ("GET", "/api/v1/auth/mfa", None, "access", dict(none=401, user=200, admin=200)),
    ("POST", "/api/v1/auth/mfa/totp/setup", None, "access", dict(none=401, user=200, admin=200)),
    # 409: nothing is pending or on; the bearer check has passed.
    (
        "POST",
        "/api/v1/auth/mfa/totp/confirm",
        {"code": "123456"},
        "access",
        dict(none=401, user=409, admin=409),
    ),
    (
        "DELETE",
        "/api/v1/auth/mfa/totp",
        {"code": "123456"},
        "access",
        dict(none=401, user=409, admin=409),
    ),
    (
        "POST",
        "/api/v1/auth/mfa/recovery-codes",
        None,
        "access",
        dict(none=401, user=409, admin=409),
    ),
    # Passkeys: well-formed answers to challenges nobody issued (400, 401 once the
    # bearer check has passed); a random passkey id is nobody's (404).
    (
        "POST",
        "/api/v1/auth/passkeys/register/options",
        {},
        "access",
        dict(none=401, user=200, admin=200),
    ),
    (
        "POST",
        "/api/v1/auth/passkeys/register",
        {"credential": UNISSUED_REGISTRATION},
        "access",
        dict(none=401, user=400, admin=400),
    ),
    ("GET", "/api/v1/auth/passkeys", None, "access", dict(none=401, user=200, admin=200)),
    (
        "PATCH",
        "/api/v1/auth/passkeys/{passkey}",
        {"name": "Mine"},
        "access",
        dict(none=401, user=404, admin=404),
    ),
    (
        "DELETE",
        "/api/v1/auth/passkeys/{passkey}",
        None,
        "access",
        dict(none=401, user=404, admin=404),
    ),
    (
        "POST",
        "/api/v1/auth/passkeys/login/options",
        None,
        "access",
        dict(none=200, user=200, admin=200),
    ),
    (
        "POST",
        "/api/v1/auth/passkeys/login",
        {"credential": UNISSUED_ASSERTION},
        "access",
        dict(none=401, user=401, admin=401),
    ),
    (
        "POST",
        "/api/v1/auth/login/mfa/passkey/options",
        {"mfa_token": "not-issued"},
        "access",
        dict(none=401, user=401, admin=401),
    ),
    # 409: the user has no passkey; the bearer check has passed.
    (
        "POST",
        "/api/v1/auth/reauthenticate/passkey/options",
        None,
        "access",
        dict(none=401, user=409, admin=409),
    ),
    # Sign-in with OpenID Providers: none is configured here, so a provider's
    # endpoints are 404 (after the bearer check where there is one).
    ("GET", "/api/v1/auth/oidc/providers", None, "access", dict(none=200, user=200, admin=200)),
    (
        "GET",
        "/api/v1/auth/oidc/{provider}/authorize",
        None,
        "access",
        dict(none=404, user=404, admin=404),
    ),
    (
        "GET",
        "/api/v1/auth/oidc/{provider}/callback",
        None,
        "access",
        dict(none=404, user=404, admin=404),
    ),
    (
        "POST",
        "/api/v1/auth/oidc/{provider}/link",
        {},
        "access",
        dict(none=401, user=404, admin=404),
    ),
    ("GET", "/api/v1/users/me/identities", None, "access", dict(none=401, user=200, admin=200)),
    (
        "DELETE",
        "/api/v1/users/me/identities/{identity}",
        None,
        "access",
        dict(none=401, user=404, admin=404),
    ),
    ("POST", "/api/v1/auth/refresh", None, "refresh", dict(none=401, user=200, admin=200)),
    ("POST", "/api/v1/auth/logout", None, "access", dict(none=401, user=204, admin=204)),
    ("POST", "/api/v1/auth/logout-all", None, "access", dict(none=401, user=204, admin=204)),
    ("GET", "/api/v1/auth/sessions", None, "access", dict(none=401, user=200, admin=200)),
    (
        "DELETE",
        "/api/v1/auth/sessions/{session}",
        None,
        "access",
        dict(none=401, user=204, admin=204),
    ),
    (
        "POST",
        "/api/v1/auth/password-reset",
        {"email": "target@example.com"},
        "access",
        dict(none=202, user=202, admin=202),
    ),
    (
        "POST",
        "/api/v1/auth/password-reset/confirm",
        {"token": "not-issued", "new_password": NEW_PASSWORD},
        "access",
        dict(none=400, user=400, admin=400),
    ),
    (
        "POST",
        "/api/v1/auth/verify-email",
        {"token": "not-issued"},
        "access",
        dict(none=400, user=400, admin=400),
    ),
    (
        "POST",
        "/api/v1/auth/verify-email/resend",
        None,
        "access",
        dict(none=401, user=202, admin=202),
    ),
    ("GET", "/api/v1/users/me", None, "access", dict(none=401, user=200, admin=200)),
    (
        "POST",
        "/api/v1/users/me/email/confirm",
        {"token": "not-issued"},
        "access",
        dict(none=400, user=400, admin=400),
    ),
    (
        "PATCH",
        "/api/v1/users/me",
        {"username": "renamed"},
        "access",
        dict(none=401, user=200, admin=200),
    ),
    (
        "DELETE",
        "/api/v1/users/me",
        {"password": DEFAULT_PASSWORD},
        "access",
        dict(none=401, user=204, admin=204),
    ),
    (
        "PUT",
        "/api/v1/users/me/password",
        {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        "access",
        dict(none=401, user=204, admin=204),
    ),
    ("GET", "/api/v1/users", None, "access", dict(none=401, user=403, admin=200)),
    ("GET", "/api/v1/users/{target}", None, "access", dict(none=401, user=403, admin=200)),
    (
        "PATCH",
        "/api/v1/users/{target}",
        {"is_admin": True},
        "access",
        dict(none=401, user=403, admin=200),
    ),
    ("DELETE", "/api/v1/users/{target}", None, "access", dict(none=401, user=403, admin=204)),
    # 409 for the admin: the target has no second factor to remove.
    (
        "DELETE",
        "/api/v1/users/{target}/mfa",
        None,
        "access",
        dict(none=401, user=403, admin=409),
    ),
]


@pytest.fixture
def actors(auth, user, admin_user):
    """Token pairs per role, and the ids paths refer to."""
    target = UserFactory(email="target@example.com", username="target")
    tokens = {
        "user": auth.login(email=user.email).get_json(),
        "admin": auth.login(email=admin_user.email).get_json(),
    }
    return tokens, target.id


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "path", "body", "kind", "expected"),
    MATRIX,
    ids=[f"{m} {p}" for m, p, *_ in MATRIX],
)
def test_endpoint_when_called_by_role_answers_expected_status(
    client, actors, method, path, body, kind, expected, role
):
    tokens, target_id = actors
    pair = tokens.get(role)
    headers = {"Authorization": f"Bearer {pair[f'{kind}_token']}"} if pair else {}
    session_id = session_of(pair["access_token"]) if pair else str(uuid.uuid4())
    url = path.format(
        target=target_id,
        session=session_id,
        css="swagger-ui.css",
        js="explorer.js",
        page="sessions",
        asset="console.js",
        passkey=uuid.uuid4(),
        provider="test",
        identity=uuid.uuid4(),
    )

    response = client.open(url, method=method, json=body, headers=headers)
    response.close()  # file responses (the docs assets) hold an open file

    assert response.status_code == expected[role], response.get_data(as_text=True)


def test_matrix_when_compared_with_routes_covers_every_endpoint(app):
    routed = {
        (method, re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "{}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule != "/api/openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    covered = {(method, re.sub(r"\{[^}]+\}", "{}", path)) for method, path, *_ in MATRIX}

    assert routed == covered
