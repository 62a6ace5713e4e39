"""Rate limits: per client IP on the auth endpoints, per account on failed logins."""

from __future__ import annotations

import uuid

import pytest
import redis
from flask import request
from limits import parse
from sqlalchemy import func, select

from myapp.auth.models import AuthSession
from myapp.extensions import db
from myapp.passwords import PasswordHasher
from myapp.ratelimit import limiter_of
from myapp.users.models import User
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.database import variant_app

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"
RESEND = "/api/v1/auth/verify-email/resend"
RESET = "/api/v1/auth/password-reset"
REDIS_URL = "redis://127.0.0.1:6379"
PW = "long enough password"


def allowed(app, config_key: str) -> int:
    """How many requests the configured limit lets through."""
    return parse(app.config[config_key]).amount


def credentials(user) -> dict:
    return {"email": user.email, "password": DEFAULT_PASSWORD}


def from_ip(ip: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": ip}}


def assert_too_many(response) -> None:
    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 429
    assert int(response.headers["Retry-After"]) > 0


def session_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuthSession))


class TestLimitsAreOn:
    def test_limiter_when_suite_runs_is_enabled(self, app):
        # Limits are on in tests, as in production: never silently disabled.
        assert limiter_of(app).enabled is True
        assert app.config["RATELIMIT_ENABLED"] is True


class TestPerIpLimits:
    def test_login_when_ip_over_limit_returns_429_and_logs_nobody_in(self, app, client, user):
        for n in range(allowed(app, "RATELIMIT_LOGIN")):
            client.post(LOGIN, json={"email": f"nobody{n}@example.com", "password": "x"})

        response = client.post(LOGIN, json=credentials(user))

        assert_too_many(response)
        assert "login attempts" in response.get_json()["detail"]
        assert session_count() == 0

    def test_login_when_other_ip_over_limit_still_works(self, app, client, user):
        for n in range(allowed(app, "RATELIMIT_LOGIN")):
            client.post(
                LOGIN,
                json={"email": f"n{n}@example.com", "password": "x"},
                **from_ip("198.51.100.1"),
            )

        response = client.post(LOGIN, json=credentials(user), **from_ip("198.51.100.2"))

        assert response.status_code == 200

    def test_password_reset_when_ip_over_limit_returns_429_and_sends_nothing(
        self, app, client, user, outbox
    ):
        for _ in range(allowed(app, "RATELIMIT_PASSWORD_RESET")):
            client.post(RESET, json={"email": "nobody@example.com"})

        response = client.post(RESET, json={"email": user.email})

        assert_too_many(response)
        assert outbox == []

    def test_register_when_ip_over_limit_returns_429_and_creates_nothing(self, app, client):
        limit = allowed(app, "RATELIMIT_REGISTER")
        for n in range(limit):
            client.post(
                "/api/v1/auth/register",
                json={"email": f"u{n}@example.com", "username": f"user{n}", "password": PW},
            )

        response = client.post(
            "/api/v1/auth/register",
            json={"email": "last@example.com", "username": "last", "password": PW},
        )

        assert_too_many(response)
        assert db.session.scalar(select(func.count()).select_from(User)) == limit

    def test_refresh_when_ip_over_limit_returns_429(self, app, client, auth, user):
        refresh = auth.login(email=user.email).get_json()["refresh_token"]
        for _ in range(allowed(app, "RATELIMIT_REFRESH")):
            refresh = client.post(
                "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {refresh}"}
            ).get_json()["refresh_token"]

        response = client.post(
            "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {refresh}"}
        )

        assert_too_many(response)

    def test_forwarded_for_when_no_proxy_trusted_cannot_reset_counter(self, app, client):
        for n in range(allowed(app, "RATELIMIT_PASSWORD_RESET")):
            client.post(
                RESET, json={"email": "a@example.com"}, headers={"X-Forwarded-For": f"10.0.0.{n}"}
            )

        response = client.post(
            RESET, json={"email": "a@example.com"}, headers={"X-Forwarded-For": "10.9.9.9"}
        )

        assert_too_many(response)


class TestPerAccountLimit:
    def test_login_when_account_failures_over_limit_blocks_even_right_password(
        self, app, client, user
    ):
        for n in range(allowed(app, "RATELIMIT_LOGIN_FAILURES")):
            # Each from its own address: the per-IP limit never triggers.
            email = user.email.upper() if n % 2 else user.email  # case opens no new counter
            client.post(
                LOGIN, json={"email": email, "password": "wrong"}, **from_ip(f"203.0.113.{n}")
            )

        response = client.post(LOGIN, json=credentials(user), **from_ip("203.0.113.200"))

        assert_too_many(response)
        assert "failed logins for this account" in response.get_json()["detail"]
        assert session_count() == 0

    def test_login_when_other_account_failing_is_unaffected(self, app, client, user):
        victim_of_typos = UserFactory()
        for n in range(allowed(app, "RATELIMIT_LOGIN_FAILURES")):
            client.post(
                LOGIN,
                json={"email": victim_of_typos.email, "password": "wrong"},
                **from_ip(f"203.0.113.{n}"),
            )

        response = client.post(LOGIN, json=credentials(user))

        assert response.status_code == 200

    def test_login_when_successes_exceed_failure_limit_keeps_working(self, app, client, user):
        for n in range(allowed(app, "RATELIMIT_LOGIN_FAILURES")):
            client.post(LOGIN, json=credentials(user), **from_ip(f"203.0.113.{n}"))

        response = client.post(LOGIN, json=credentials(user), **from_ip("203.0.113.250"))

        assert response.status_code == 200


class TestPerUserLimits:
    """Endpoints behind a token are limited per user: a token is no licence to
    guess the password, mail a stranger, or probe for taken names without end."""

    def test_password_checks_when_budget_spent_across_endpoints_return_429_unchecked(
        self, app, client, user, auth_headers, mocker
    ):
        wrong_current = {"current_password": "not it", "new_password": PW}
        for n in range(allowed(app, "RATELIMIT_PASSWORD_CHECK")):
            # One budget for every endpoint that checks the current password.
            if n % 2:
                client.delete(ME, json={"password": "not it"}, headers=auth_headers)
            else:
                client.put(f"{ME}/password", json=wrong_current, headers=auth_headers)
        checks = mocker.spy(PasswordHasher, "verify")

        deletion = client.delete(ME, json={"password": DEFAULT_PASSWORD}, headers=auth_headers)
        change = client.put(f"{ME}/password", json=wrong_current, headers=auth_headers)

        assert_too_many(deletion)
        assert_too_many(change)
        assert deletion.get_json()["detail"] == "Too many password checks; try again later."
        assert checks.call_count == 0
        assert db.session.get(User, user.id) is not None

    def test_verification_resend_when_budget_spent_returns_429_and_mails_nothing_more(
        self, app, client, auth_headers, outbox
    ):
        limit = allowed(app, "RATELIMIT_VERIFY_RESEND")
        for _ in range(limit):
            assert client.post(RESEND, headers=auth_headers).status_code == 202

        response = client.post(RESEND, headers=auth_headers)

        assert_too_many(response)
        assert response.get_json()["detail"] == "Too many verification emails; try again later."
        assert len(outbox) == limit

    def test_profile_update_when_budget_spent_returns_429_and_changes_nothing(
        self, app, client, user, auth_headers
    ):
        UserFactory(username="taken")
        for _ in range(allowed(app, "RATELIMIT_PROFILE_UPDATE")):
            assert (
                client.patch(ME, json={"username": "taken"}, headers=auth_headers).status_code
                == 409
            )

        response = client.patch(ME, json={"username": "free-name"}, headers=auth_headers)

        assert_too_many(response)
        assert db.session.get(User, user.id).username == user.username

    def test_budget_when_one_user_spends_it_leaves_others_theirs(
        self, app, client, auth, auth_headers, outbox
    ):
        for _ in range(allowed(app, "RATELIMIT_VERIFY_RESEND")):
            client.post(RESEND, headers=auth_headers)
        other = auth.headers_for(UserFactory())

        response = client.post(RESEND, headers=other)

        assert response.status_code == 202


class TestTrustedProxy:
    @pytest.mark.parametrize(
        ("hops", "ours"),
        # Behind one proxy, the entry it appends is the client; behind two (a load
        # balancer, then our reverse proxy), the entry before the second one's.
        [(1, ""), (2, ", 10.0.0.1")],
        ids=["one-proxy", "two-proxies"],
    )
    def test_forwarded_for_when_proxies_trusted_limits_the_real_client(self, hops, ours):
        def reset_from(forwarded_for: str):
            return client.post(
                RESET,
                json={"email": "a@example.com"},
                environ_base={"REMOTE_ADDR": "10.0.0.2"},
                headers={"X-Forwarded-For": forwarded_for + ours},
            )

        with variant_app(PROXY_FIX_X_FOR=hops) as app:
            client = app.test_client()
            for n in range(allowed(app, "RATELIMIT_PASSWORD_RESET")):
                # The client prepends a fake address; our proxies append the real one.
                reset_from(f"192.0.2.{n}, 203.0.113.7")
            spoofed = reset_from("192.0.2.99, 203.0.113.7")
            other_client = reset_from("203.0.113.8")

        assert_too_many(spoofed)
        assert other_client.status_code == 202

    def test_forwarded_proto_host_port_and_prefix_when_proxies_trusted_are_ignored(self):
        with variant_app(PROXY_FIX_X_FOR=1) as app:
            seen = {}

            @app.get("/scheme-probe")
            def probe():
                seen.update(scheme=request.scheme, host=request.host, root=request.script_root)
                return ""

            app.test_client().get(
                "/scheme-probe",
                headers={
                    "X-Forwarded-Proto": "https",
                    "X-Forwarded-Host": "evil.example",
                    "X-Forwarded-Port": "8443",
                    "X-Forwarded-Prefix": "/evil",
                },
            )

        assert seen == {"scheme": "http", "host": "localhost", "root": ""}


class TestSharedRedisStorage:
    @pytest.fixture
    def redis_apps(self):
        """Two app instances counting in the real Redis under a prefix of their own."""
        prefix = f"myapp-test-{uuid.uuid4().hex}"
        settings = {"RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": prefix}
        with variant_app(**settings) as first, variant_app(**settings) as second:
            yield first, second
        server = redis.Redis.from_url(REDIS_URL)
        keys = list(server.scan_iter(match=f"*{prefix}*"))
        if keys:
            server.delete(*keys)

    def test_limit_when_reached_on_one_instance_applies_on_the_other(self, redis_apps):
        first, second = redis_apps
        for _ in range(allowed(first, "RATELIMIT_PASSWORD_RESET")):
            response = first.test_client().post(RESET, json={"email": "a@example.com"})
            assert response.status_code == 202

        response = second.test_client().post(RESET, json={"email": "a@example.com"})

        assert_too_many(response)
