"""GET /api/v1/users/me, and every way a bearer token can be wrong."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
from freezegun import freeze_time

from myapp.extensions import db
from myapp.users.models import MAX_ID
from tests.conftest import bearer
from tests.factories import UserFactory

URL = "/api/v1/users/me"


@pytest.fixture
def token_claims(app, auth, user) -> dict:
    """The claims of a genuine access token for ``user``, to forge variants from."""
    token = auth.login(email=user.email).get_json()["access_token"]
    return pyjwt.decode(
        token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"], audience="myapp-api"
    )


@pytest.fixture
def forge(app, token_claims):
    """Sign a token like the genuine one, with some claims changed or removed (None)."""

    def _forge(key: str | None = None, algorithm: str = "HS256", **changes) -> str:
        payload = {**token_claims, **changes}
        payload = {k: v for k, v in payload.items() if v is not None}
        return pyjwt.encode(payload, key or app.config["JWT_SECRET_KEY"], algorithm=algorithm)

    return _forge


def unsigned(claims: dict) -> str:
    """An ``alg: none`` token: what an attacker sends hoping the server skips checks."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def assert_unauthorized(response, detail: str | None = None) -> None:
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if detail is not None:
        assert response.get_json()["detail"] == detail


class TestMeSuccess:
    def test_me_when_token_valid_returns_user(self, client, user, auth_headers):
        response = client.get(URL, headers=auth_headers)

        body = response.get_json()
        assert response.status_code == 200
        assert body["id"] == user.id
        assert (body["email"], body["username"]) == ("ada@example.com", "ada")
        assert "password_hash" not in body

    # The token check guards the id range before querying: its edges are real users.
    @pytest.mark.parametrize("user_id", [1, MAX_ID])
    def test_me_when_user_id_at_an_edge_of_the_range_returns_that_user(self, client, auth, user_id):
        edge = UserFactory(id=user_id)

        response = client.get(URL, headers=auth.headers_for(edge))

        assert response.status_code == 200
        assert response.get_json()["id"] == user_id


class TestMeRejectsBadAuthorization:
    def test_me_when_no_header_returns_401_without_error_code(self, client):
        response = client.get(URL)

        assert_unauthorized(response, "Missing bearer token.")
        assert "error=" not in response.headers["WWW-Authenticate"]

    @pytest.mark.parametrize(
        "header",
        [
            "Bearer",
            "Bearer ",
            "Basic dXNlcjpwYXNzd29yZA==",
            "Bearer a b",
            "Bearer garbage",
            "Bearer a.b.c",
            "eyJhbGciOiJIUzI1NiJ9.e30.sig",
        ],
        ids=[
            "no-token",
            "blank-token",
            "basic",
            "two-parts",
            "garbage",
            "three-parts",
            "no-scheme",
        ],
    )
    def test_me_when_header_malformed_returns_401(self, client, header):
        assert_unauthorized(client.get(URL, headers={"Authorization": header}))

    def test_me_when_signature_tampered_returns_401(self, client, auth, user):
        token = auth.login(email=user.email).get_json()["access_token"]
        head, payload, signature = token.split(".")
        tampered = f"{head}.{payload}.{signature[::-1]}"

        assert_unauthorized(client.get(URL, headers=bearer(tampered)), "Invalid token.")

    def test_me_when_payload_tampered_returns_401(self, client, auth, user, token_claims):
        token = auth.login(email=user.email).get_json()["access_token"]
        head, _, signature = token.split(".")
        _, forged_payload, _ = unsigned({**token_claims, "sub": "999"}).split(".")

        assert_unauthorized(client.get(URL, headers=bearer(f"{head}.{forged_payload}.{signature}")))

    def test_me_when_alg_none_returns_401(self, client, token_claims):
        assert_unauthorized(client.get(URL, headers=bearer(unsigned(token_claims))))

    def test_me_when_other_algorithm_returns_401(self, client, forge):
        assert_unauthorized(client.get(URL, headers=bearer(forge(algorithm="HS512"))))

    def test_me_when_signed_with_other_key_returns_401(self, client, forge):
        assert_unauthorized(client.get(URL, headers=bearer(forge(key="k" * 64))))

    @pytest.mark.parametrize(
        "changes",
        [
            {"sub": None},
            {"sub": "not-a-number"},
            {"sub": "999999"},
            {"sub": "99999999999999999999"},
            {"type": "refresh"},
            {"iss": "someone-else"},
            {"aud": "another-api"},
            {"ver": None},
            {"ver": 1},
            {"nbf": int((datetime.now(UTC) + timedelta(hours=1)).timestamp())},
            {"exp": int((datetime.now(UTC) - timedelta(seconds=1)).timestamp())},
        ],
        ids=[
            "no-sub",
            "bad-sub",
            "unknown-user",
            "sub-out-of-range",
            "refresh-as-access",
            "wrong-issuer",
            "wrong-audience",
            "no-version",
            "stale-version",
            "not-yet-valid",
            "expired",
        ],
    )
    def test_me_when_claims_wrong_returns_401(self, client, forge, changes):
        assert_unauthorized(client.get(URL, headers=bearer(forge(**changes))))

    @pytest.mark.parametrize("sub", ["0", "-1", str(MAX_ID + 1)])
    def test_me_when_user_id_cannot_exist_returns_401_without_a_query(
        self, client, forge, sql_statements, sub
    ):
        # No id outside 1..MAX_ID can exist: refused before any round trip.
        token = forge(sub=sub)
        sql_statements.clear()

        assert_unauthorized(client.get(URL, headers=bearer(token)), "Token is no longer valid.")
        assert sql_statements == []

    def test_me_when_refresh_token_used_returns_401(self, client, auth, user):
        refresh = auth.login(email=user.email).get_json()["refresh_token"]

        assert_unauthorized(client.get(URL, headers=bearer(refresh)), "Invalid token.")


class TestMeRejectsTokensOfChangedUsers:
    def test_me_when_user_deactivated_returns_generic_401(self, client, user, auth_headers):
        user.is_active = False
        db.session.commit()

        response = client.get(URL, headers=auth_headers)

        assert_unauthorized(response, "Token is no longer valid.")
        assert str(user.id) not in response.get_json()["detail"]

    def test_me_when_user_deleted_returns_401(self, client, user, auth_headers):
        db.session.delete(user)
        db.session.commit()

        assert_unauthorized(client.get(URL, headers=auth_headers), "Token is no longer valid.")

    def test_me_when_token_version_bumped_returns_401(self, client, user, auth_headers):
        user.token_version += 1
        db.session.commit()

        assert_unauthorized(client.get(URL, headers=auth_headers), "Token is no longer valid.")


class TestMeTokenExpiry:
    def test_me_when_one_second_before_expiry_returns_200(self, app, client, auth, user):
        lifetime = app.config["JWT_ACCESS_TOKEN_EXPIRES"]
        with freeze_time("2026-03-01 12:00:00") as clock:
            headers = auth.headers_for(user)
            clock.tick(lifetime - timedelta(seconds=1))

            response = client.get(URL, headers=headers)

        assert response.status_code == 200
        assert response.get_json()["id"] == user.id

    def test_me_when_one_second_after_expiry_returns_401(self, app, client, auth, user):
        lifetime = app.config["JWT_ACCESS_TOKEN_EXPIRES"]
        with freeze_time("2026-03-01 12:00:00") as clock:
            headers = auth.headers_for(user)
            clock.tick(lifetime + timedelta(seconds=1))

            response = client.get(URL, headers=headers)

        assert_unauthorized(response, "Token has expired.")
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


class TestTokenDecodedOnce:
    def test_me_when_called_decodes_the_token_once_and_verifies_it(
        self, client, auth_headers, monkeypatch
    ):
        calls = []
        real_decode = pyjwt.decode

        def counted(token, key=None, *args, **kwargs):
            calls.append(kwargs.get("options", {}).get("verify_signature", True))
            return real_decode(token, key, *args, **kwargs)

        monkeypatch.setattr(pyjwt, "decode", counted)

        response = client.get(URL, headers=auth_headers)

        assert response.status_code == 200
        # flask-jwt-extended alone decodes twice (claims unverified, then verified).
        assert calls == [True]
