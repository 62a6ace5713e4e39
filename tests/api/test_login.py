"""POST /api/v1/auth/login"""

from __future__ import annotations

import argon2
import jwt as pyjwt
import pytest

from myapp.extensions import db, passwords
from tests.factories import DEFAULT_PASSWORD, UserFactory

URL = "/api/v1/auth/login"
TOKEN_CLAIMS = {
    "sub",
    "ver",
    "sid",
    "jti",
    "csrf",
    "type",
    "fresh",
    "iat",
    "nbf",
    "exp",
    "iss",
    "aud",
}


def claims(token: str, app) -> dict:
    return pyjwt.decode(
        token,
        app.config["JWT_SECRET_KEY"],
        algorithms=["HS256"],
        audience=app.config["JWT_DECODE_AUDIENCE"],
    )


class TestLoginSuccess:
    @pytest.mark.parametrize(
        "identifier",
        [
            {"email": "ada@example.com"},
            {"email": "  ADA@Example.com "},
            {"username": "ada"},
            {"username": "ADA"},
        ],
        ids=["email", "email-other-case", "username", "username-other-case"],
    )
    def test_login_when_credentials_match_returns_token_pair(self, app, auth, user, identifier):
        response = auth.login(**identifier)

        body = response.get_json()
        assert response.status_code == 200
        assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()

    def test_login_when_successful_issues_fresh_access_and_refresh_for_user(self, app, auth, user):
        body = auth.login(email=user.email).get_json()

        access, refresh = claims(body["access_token"], app), claims(body["refresh_token"], app)
        assert (access["type"], access["fresh"], access["sub"]) == ("access", True, str(user.id))
        assert (refresh["type"], refresh["sub"]) == ("refresh", str(user.id))
        assert access["ver"] == refresh["ver"] == user.token_version
        assert (access["iss"], access["aud"]) == ("myapp", "myapp-api")
        # A client can read its tokens: they carry what the checks need and nothing else.
        assert set(access) == set(refresh) == TOKEN_CLAIMS

    def test_login_when_hash_parameters_outdated_upgrades_stored_hash(self, app, auth):
        outdated = argon2.PasswordHasher(time_cost=1, memory_cost=16, parallelism=2)
        user = UserFactory(password_hash=outdated.hash(DEFAULT_PASSWORD))

        response = auth.login(email=user.email)

        db.session.refresh(user)
        assert response.status_code == 200
        assert argon2.extract_parameters(user.password_hash).parallelism == 1
        assert passwords.verify(user.password_hash, DEFAULT_PASSWORD)


class TestLoginFailure:
    @pytest.mark.parametrize(
        ("identifier", "password", "active"),
        [
            ({"email": "nobody@example.com"}, DEFAULT_PASSWORD, True),
            ({"username": "nobody"}, DEFAULT_PASSWORD, True),
            ({"email": "ada@example.com"}, "wrong password!!", True),
            ({"email": "ada@example.com"}, DEFAULT_PASSWORD, False),
        ],
        ids=["unknown-email", "unknown-username", "wrong-password", "inactive"],
    )
    def test_login_when_credentials_rejected_returns_same_401_and_same_work(
        self, auth, mocker, identifier, password, active
    ):
        UserFactory(email="ada@example.com", username="ada", is_active=active)
        verify = mocker.spy(passwords, "verify")

        response = auth.login(password, **identifier)

        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["detail"] == "Invalid credentials"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        # One argon2 verification whatever the cause: timing reveals nothing.
        assert verify.call_count == 1

    @pytest.mark.parametrize(
        "payload",
        [
            {},
            {"password": DEFAULT_PASSWORD},
            {"email": "ada@example.com"},
            {"email": "ada@example.com", "username": "ada", "password": DEFAULT_PASSWORD},
            {"email": "", "password": DEFAULT_PASSWORD},
            {"email": 5, "password": DEFAULT_PASSWORD},
            {"email": "ada@example.com", "password": ""},
            {"email": "ada@example.com", "password": "p" * 1_000_000},
            {"email": "ada\u0000@example.com", "password": DEFAULT_PASSWORD},
            {"email": "ada@example.com", "password": DEFAULT_PASSWORD, "remember": True},
        ],
        ids=[
            "empty",
            "no-identifier",
            "no-password",
            "both-identifiers",
            "empty-email",
            "email-int",
            "empty-password",
            "huge-password",
            "nul-email",
            "unknown-field",
        ],
    )
    def test_login_when_body_invalid_returns_422(self, client, user, payload):
        response = client.post(URL, json=payload)

        body = response.get_json()
        assert response.status_code == 422
        assert response.mimetype == "application/problem+json"
        assert body["errors"]["json"]
