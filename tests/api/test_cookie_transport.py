"""Browser transport: the refresh token in an httpOnly cookie, CSRF and Origin
checks on the requests that present it, and cookies cleared at logout.

The test client keeps cookies like a browser (per path), and sends them back.
"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import pytest
from sqlalchemy import select

from myapp.auth.models import AuthSession
from myapp.extensions import db
from tests.conftest import bearer, live_sessions
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.database import variant_app

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
COOKIE_MODE = {"X-Token-Transport": "cookie"}
SITE = "http://127.0.0.1:5000"  # APP_BASE_URL of the testing config


def set_cookies(response) -> dict[str, dict]:
    """Each Set-Cookie of the response: name -> {"value", attribute: value}."""
    found = {}
    for header in response.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            attributes = {k: str(v) for k, v in morsel.items() if v != ""}
            # SimpleCookie keeps flags as True; the raw header is the truth for them.
            attributes["httponly"] = "httponly" in header.lower()
            attributes["secure"] = "secure" in header.lower()
            found[name] = {"value": morsel.value, **attributes}
    return found


def cookie_login(client, user, **headers):
    return client.post(
        LOGIN,
        json={"email": user.email, "password": DEFAULT_PASSWORD},
        headers={**COOKIE_MODE, **headers},
    )


def csrf_of(client) -> str:
    return client.get_cookie("myapp_csrf").value


def from_site(client, **extra) -> dict[str, str]:
    """What the console page sends with a cookie request."""
    return {"X-CSRF-Token": csrf_of(client), "Origin": SITE, **extra}


class TestCookieLogin:
    def test_login_when_cookie_transport_asked_sets_httponly_strict_cookie_not_body(
        self, client, user
    ):
        response = cookie_login(client, user)

        body = response.get_json()
        cookies = set_cookies(response)
        refresh, csrf = cookies["myapp_refresh"], cookies["myapp_csrf"]
        assert response.status_code == 200
        assert set(body) == {"access_token", "token_type", "expires_in", "csrf_token"}
        assert (body["token_type"], body["expires_in"]) == ("bearer", 900)
        assert (refresh["httponly"], refresh["samesite"], refresh["path"]) == (
            True,
            "Strict",
            "/api/v1/auth",
        )
        assert (csrf["httponly"], csrf["samesite"], csrf["path"]) == (False, "Strict", "/")
        # Over http (development, testing), not Secure: the browser would drop it.
        assert refresh["secure"] is False and csrf["secure"] is False
        assert body["csrf_token"] == csrf["value"]
        # 192 random bits (32 URL-safe characters): unguessable from another site.
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", csrf["value"])

    def test_login_when_cookie_transport_asked_sets_max_age_to_the_sessions_life(
        self, client, user, app
    ):
        response = cookie_login(client, user)

        max_age = int(set_cookies(response)["myapp_refresh"]["max-age"])
        idle = int(app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds())
        assert idle - 5 <= max_age <= idle

    def test_login_when_absolute_lifetime_is_shorter_caps_max_age_at_it(
        self, client, user, app, monkeypatch
    ):
        monkeypatch.setitem(app.config, "SESSION_ABSOLUTE_LIFETIME", 3600)

        response = cookie_login(client, user)

        assert 3595 <= int(set_cookies(response)["myapp_refresh"]["max-age"]) <= 3600

    # No `user` fixture in the variant-app tests: on PostgreSQL the variant app has a
    # connection of its own, and the suite's open transaction would block its insert.
    def test_login_when_site_is_https_marks_both_cookies_secure(self):
        with variant_app(APP_BASE_URL="https://accounts.example") as app:
            other = UserFactory(email="secure@example.com", username="secure")
            response = cookie_login(app.test_client(), other)

        cookies = set_cookies(response)
        assert cookies["myapp_refresh"]["secure"] is True
        assert cookies["myapp_csrf"]["secure"] is True

    def test_login_when_no_transport_header_is_unchanged_for_header_clients(self, client, user):
        response = client.post(LOGIN, json={"email": user.email, "password": DEFAULT_PASSWORD})

        assert response.get_json()["refresh_token"]
        assert "Set-Cookie" not in response.headers

    @pytest.mark.parametrize("value", ["Cookie", "body", ""])
    def test_login_when_transport_header_unknown_is_422(self, client, user, value):
        response = client.post(
            LOGIN,
            json={"email": user.email, "password": DEFAULT_PASSWORD},
            headers={"X-Token-Transport": value},
        )

        assert response.status_code == 422
        assert "X-Token-Transport" in response.get_json()["errors"]["headers"]
        assert live_sessions(user) == 0


class TestCookieRefresh:
    def test_refresh_when_cookie_csrf_and_origin_right_rotates_into_a_new_cookie(
        self, client, user
    ):
        first = cookie_login(client, user)
        old_cookie = client.get_cookie("myapp_refresh", path="/api/v1/auth").value

        response = client.post(REFRESH, headers=from_site(client))

        body = response.get_json()
        assert response.status_code == 200, body
        assert "refresh_token" not in body and body["access_token"]
        new = set_cookies(response)["myapp_refresh"]["value"]
        assert new != old_cookie
        assert body["csrf_token"] == csrf_of(client) != first.get_json()["csrf_token"]
        assert (
            client.get("/api/v1/users/me", headers=bearer(body["access_token"])).status_code == 200
        )

    @pytest.mark.parametrize(
        ("headers", "detail"),
        [
            ({"Origin": SITE}, "X-CSRF-Token"),
            ({"Origin": SITE, "X-CSRF-Token": "not-the-value"}, "X-CSRF-Token"),
            ({"X-CSRF-Token": None, "Origin": "https://evil.example"}, "Origin"),
            ({"X-CSRF-Token": None}, "Origin"),  # neither Origin nor Referer
            ({"X-CSRF-Token": None, "Origin": "null"}, "Origin"),
            ({"X-CSRF-Token": None, "Referer": "https://evil.example/account"}, "Origin"),
        ],
        ids=[
            "no-csrf",
            "wrong-csrf",
            "foreign-origin",
            "no-origin",
            "null-origin",
            "foreign-referer",
        ],
    )
    def test_refresh_when_csrf_or_origin_wrong_is_403_and_rotates_nothing(
        self, client, user, headers, detail
    ):
        cookie_login(client, user)
        headers = {k: (csrf_of(client) if v is None else v) for k, v in headers.items()}
        jti_before = db.session.scalar(select(AuthSession.refresh_jti))

        response = client.post(REFRESH, headers=headers)

        assert response.status_code == 403
        assert response.mimetype == "application/problem+json"
        assert detail in response.get_json()["detail"]
        db.session.expire_all()
        assert db.session.scalar(select(AuthSession.refresh_jti)) == jti_before
        # The cookie still works from the site.
        assert client.post(REFRESH, headers=from_site(client)).status_code == 200

    @pytest.mark.parametrize(
        "trusted", [{"Referer": f"{SITE}/account/sessions"}, {"Origin": "http://127.0.0.1:5000"}]
    )
    def test_refresh_when_origin_or_referer_is_the_site_is_accepted(self, client, user, trusted):
        cookie_login(client, user)

        response = client.post(REFRESH, headers={"X-CSRF-Token": csrf_of(client), **trusted})

        assert response.status_code == 200

    def test_refresh_when_csrf_missing_in_an_app_of_its_own_is_the_csrf_problem(self):
        # An app built inside the test: its CSRF handler is installed under the test.
        with variant_app() as app:
            client = app.test_client()
            cookie_login(client, UserFactory(email="csrf@example.com", username="csrf"))
            response = client.post(REFRESH, headers={"Origin": SITE})

        assert response.status_code == 403
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["detail"] == (
            "The X-CSRF-Token header must repeat the myapp_csrf cookie's value."
        )

    def test_refresh_when_origin_is_a_configured_cors_origin_is_accepted(self):
        with variant_app(CORS_ORIGINS=["https://app.example"]) as app:
            client = app.test_client()
            cookie_login(client, UserFactory(email="spa@example.com", username="spa"))
            response = client.post(
                REFRESH, headers={"X-CSRF-Token": csrf_of(client), "Origin": "https://app.example"}
            )

        assert response.status_code == 200

    def test_refresh_when_old_cookie_value_replayed_revokes_the_session(self, client, user):
        cookie_login(client, user)
        stolen = client.get_cookie("myapp_refresh", path="/api/v1/auth").value
        stolen_csrf = csrf_of(client)
        assert client.post(REFRESH, headers=from_site(client)).status_code == 200

        client.set_cookie("myapp_refresh", stolen, path="/api/v1/auth")
        replay = client.post(REFRESH, headers={"X-CSRF-Token": stolen_csrf, "Origin": SITE})

        assert replay.status_code == 401
        assert replay.get_json()["detail"].startswith("Refresh token reuse detected")
        assert live_sessions(user) == 0


class TestCookieLogout:
    def test_logout_when_only_the_cookie_is_sent_revokes_the_session_and_clears_cookies(
        self, client, user
    ):
        cookie_login(client, user)

        response = client.post(LOGOUT, headers=from_site(client))

        cleared = set_cookies(response)
        assert response.status_code == 204
        assert live_sessions(user) == 0
        for name in ("myapp_refresh", "myapp_csrf"):  # emptied and expired long ago
            assert cleared[name]["value"] == "" and "1970" in cleared[name]["expires"]
        assert client.get_cookie("myapp_refresh", path="/api/v1/auth") is None

    def test_logout_when_cookie_sent_without_csrf_is_403_and_revokes_nothing(self, client, user):
        cookie_login(client, user)

        response = client.post(LOGOUT, headers={"Origin": SITE})

        assert response.status_code == 403
        assert live_sessions(user) == 1

    def test_logout_when_cookie_sent_from_a_foreign_origin_is_403(self, client, user):
        cookie_login(client, user)

        response = client.post(
            LOGOUT, headers={"X-CSRF-Token": csrf_of(client), "Origin": "https://evil.example"}
        )

        assert response.status_code == 403
        assert live_sessions(user) == 1

    def test_logout_all_when_called_with_the_access_token_clears_the_cookies(self, client, user):
        access = cookie_login(client, user).get_json()["access_token"]

        response = client.post("/api/v1/auth/logout-all", headers=bearer(access))

        assert response.status_code == 204
        assert set(set_cookies(response)) == {"myapp_refresh", "myapp_csrf"}
        assert client.get_cookie("myapp_refresh", path="/api/v1/auth") is None

    def test_logout_when_no_token_at_all_is_401(self, client):
        assert client.post(LOGOUT).status_code == 401


class TestCookieSecondStep:
    def test_second_step_when_cookie_transport_asked_sets_the_cookie(
        self, client, auth, user, enrolled
    ):
        token = auth.mfa_token_for(user)

        response = client.post(
            "/api/v1/auth/login/mfa",
            json={"mfa_token": token, "code": enrolled.authenticator.code()},
            headers=COOKIE_MODE,
        )

        assert response.status_code == 200
        assert "refresh_token" not in response.get_json()
        assert set_cookies(response)["myapp_refresh"]["httponly"] is True


class TestAccessTokensStayInHeaders:
    def test_me_when_a_token_arrives_as_a_cookie_only_is_401(self, client, user, auth):
        access = auth.login(email=user.email).get_json()["access_token"]
        client.set_cookie("access_token_cookie", access)
        client.set_cookie("myapp_refresh", access, path="/")

        assert client.get("/api/v1/users/me").status_code == 401
