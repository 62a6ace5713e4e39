"""Sign-in with an OpenID Provider, against a real one (panva's certified
oidc-provider, started by the suite: tests/support/oidc.py): the whole code flow
through its pages, sign-in of a linked identity, account creation, the refusal to
link by email, explicit linking, unlinking rules, and tampering with the flow."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from freezegun import freeze_time
from joserfc.jwk import RSAKey
from sqlalchemy import func, select

from myapp.auth.models import AuthSession, MfaChallenge, OidcAuthorization, OidcIdentity
from myapp.auth.oidc import AUTHORIZATION_LIFETIME, DISCOVERY
from myapp.auth.tokens import TokenService
from myapp.database.columns import utcnow
from myapp.extensions import db
from myapp.passwords import is_usable
from myapp.users.models import User
from tests.conftest import bearer, mails, token_from
from tests.factories import UserFactory
from tests.support.database import variant_app
from tests.support.oidc import PROVIDER, OidcActions, OpenIdProvider
from tests.support.passkeys import register_passkey

PROVIDERS = "/api/v1/auth/oidc/providers"
IDENTITIES = "/api/v1/users/me/identities"


def problem_of(response) -> str | None:
    """The problem code a failed callback sends the browser to the console with."""
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    location = urlsplit(response.headers["Location"])
    assert location.path in ("/account/signin", "/account/linked"), location
    return parse_qs(location.query).get("problem", [None])[0]


def identities_of(user) -> list[OidcIdentity]:
    db.session.expire_all()
    return list(db.session.scalars(select(OidcIdentity).where(OidcIdentity.user_id == user.id)))


def user_by_email(email: str) -> User | None:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email == email))


def sessions_of(user) -> int:
    return db.session.scalar(
        select(func.count()).select_from(AuthSession).where(AuthSession.user_id == user.id)
    )


def signed_in(client, response) -> dict:
    """After a callback that signed in: the refresh cookie works (as the console uses it)."""
    assert response.status_code == 302
    cookie = client.get_cookie("myapp_refresh", path="/api/v1/auth")
    assert cookie is not None and cookie.http_only
    csrf = client.get_cookie("myapp_csrf").value
    refreshed = client.post(
        "/api/v1/auth/refresh",
        headers={"X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:5000"},
    )
    assert refreshed.status_code == 200, refreshed.get_json()
    return client.get(
        "/api/v1/users/me", headers=bearer(refreshed.get_json()["access_token"])
    ).get_json()


class TestProviders:
    def test_providers_when_none_configured_is_an_empty_list(self, client):
        response = client.get(PROVIDERS)

        assert response.status_code == 200
        assert response.get_json() == []

    def test_providers_when_configured_lists_names_and_labels_only(self, client, oidc):
        response = client.get(PROVIDERS)

        assert response.get_json() == [{"name": PROVIDER, "label": "Sign in with Test ID"}]

    def test_authorize_when_provider_unknown_is_404(self, client):
        response = client.get(f"/api/v1/auth/oidc/{PROVIDER}/authorize")

        assert response.status_code == 404
        assert response.get_json()["detail"] == "No such sign-in provider."


class TestAuthorize:
    def test_authorize_when_asked_redirects_with_pkce_state_and_nonce_kept_server_side(
        self, client, oidc, openid_provider, audit_log
    ):
        response = oidc.authorize("/account/sessions")

        assert response.status_code == 302
        location = urlsplit(response.headers["Location"])
        query = parse_qs(location.query)
        assert f"{location.scheme}://{location.netloc}" == openid_provider.issuer
        assert query["code_challenge_method"] == ["S256"]
        assert query["redirect_uri"] == [
            f"http://127.0.0.1:5000/api/v1/auth/oidc/{PROVIDER}/callback"
        ]
        assert {"state", "nonce", "code_challenge"} <= set(query)
        stored = db.session.scalars(select(OidcAuthorization)).one()
        assert stored.next_path == "/account/sessions"
        assert query["state"][0] not in (stored.state_hash, stored.nonce)  # only its digest
        assert stored.nonce == query["nonce"][0]
        assert stored.expires_at - stored.created_at == AUTHORIZATION_LIFETIME
        cookie = client.get_cookie("myapp_oidc", path="/api/v1/auth/oidc")
        assert cookie.http_only and cookie.same_site == "Lax"
        # 256 random bits each; the PKCE verifier at 86 characters (RFC 7636: 43 to 128).
        assert (len(query["state"][0]), len(stored.nonce), len(stored.code_verifier)) == (
            43,
            43,
            86,
        )
        (line,) = audit_log("oidc.started")
        assert (line["user_id"], line["provider"]) == (None, PROVIDER)

    @pytest.mark.parametrize(
        "next_path",
        ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
    )
    def test_authorize_when_next_leaves_the_site_is_422_and_stores_nothing(
        self, client, oidc, next_path
    ):
        response = client.get(
            f"/api/v1/auth/oidc/{PROVIDER}/authorize", query_string={"next": next_path}
        )

        assert response.status_code == 422
        assert "next" in response.get_json()["errors"]["query"]
        assert db.session.scalar(select(func.count()).select_from(OidcAuthorization)) == 0

    def test_authorize_when_base_url_ends_with_a_slash_names_one_redirect_uri(
        self, openid_provider
    ):
        providers = {PROVIDER: openid_provider.settings()}
        with variant_app(APP_BASE_URL="http://127.0.0.1:5000/", OIDC_PROVIDERS=providers) as app:
            location = urlsplit(
                OidcActions(app.test_client(), openid_provider, "").authorize().headers["Location"]
            )

        # The provider compares redirect URIs exactly: no "//api" from a trailing slash.
        assert parse_qs(location.query)["redirect_uri"] == [
            f"http://127.0.0.1:5000/api/v1/auth/oidc/{PROVIDER}/callback"
        ]

    def test_authorize_when_asked_keeps_the_browser_secret_in_a_short_lived_cookie(
        self, app, client, oidc, monkeypatch
    ):
        monkeypatch.setitem(app.config, "JWT_COOKIE_SECURE", True)  # an https site

        response = oidc.authorize()

        (cookie,) = [c for c in response.headers.getlist("Set-Cookie") if "myapp_oidc" in c]
        attributes = {part.strip().split("=")[0] for part in cookie.split(";")}
        assert {"Secure", "HttpOnly"} <= attributes
        assert f"Max-Age={int(AUTHORIZATION_LIFETIME.total_seconds())}" in cookie
        assert "SameSite=Lax" in cookie  # sent on the provider's redirect back, a top-level GET
        secret = client.get_cookie("myapp_oidc", path="/api/v1/auth/oidc").value
        assert len(secret) == 43  # 256 random bits


class TestProviderUnavailable:
    """The provider cannot be used (down, or its issuer written otherwise than it
    writes it): nothing is stored, the failure is audited, and the browser lands on
    the console (authorize) or the API answers 503 (link); never a 500."""

    @pytest.fixture(
        params=[
            # The discard port: the connection is refused at once.
            ("http://127.0.0.1:9", "discovery failed"),
            ("{issuer}/", "discovery document of another issuer"),
        ],
        ids=["unreachable", "issuer-with-a-slash-it-does-not-write"],
    )
    def broken(self, request, app, openid_provider, monkeypatch):
        """The provider configured unusably; the audit reason that says why."""
        issuer, reason = request.param
        settings = openid_provider.settings(issuer=issuer.format(issuer=openid_provider.issuer))
        monkeypatch.setitem(app.config, "OIDC_PROVIDERS", {PROVIDER: settings})
        return reason

    def test_authorize_when_provider_unusable_lands_on_the_console_storing_nothing(
        self, client, broken, audit_log
    ):
        response = client.get(f"/api/v1/auth/oidc/{PROVIDER}/authorize")

        assert problem_of(response) == "oidc_provider"
        assert db.session.scalar(select(func.count()).select_from(OidcAuthorization)) == 0
        assert client.get_cookie("myapp_oidc", path="/api/v1/auth/oidc") is None
        (line,) = audit_log("oidc.failed")
        assert (line["provider"], line["code"]) == (PROVIDER, "oidc_provider")
        assert line["reason"].startswith(broken)

    def test_link_when_provider_unusable_is_503_storing_nothing(
        self, client, broken, user, auth, audit_log
    ):
        response = client.post(
            f"/api/v1/auth/oidc/{PROVIDER}/link", json={}, headers=auth.headers_for(user)
        )

        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["detail"] == "The provider cannot be reached; retry shortly."
        assert response.headers["Retry-After"] == "5"
        assert db.session.scalar(select(func.count()).select_from(OidcAuthorization)) == 0
        (line,) = audit_log("oidc.failed")
        assert (line["user_id"], line["provider"], line["code"]) == (
            user.id,
            PROVIDER,
            "oidc_provider",
        )
        assert line["reason"].startswith(broken)


class TestSignIn:
    def test_sign_in_when_started_in_two_tabs_finishes_in_the_first_too(self, client, oidc):
        # One secret per browser: the second tab's start must not undo the first's.
        first = oidc.authorize().headers["Location"]
        oidc.authorize()

        response = oidc.follow(oidc.callback_url("grace@example.com", first))

        assert response.headers["Location"] == "/account"
        assert signed_in(client, response)["email"] == "grace@example.com"

    def test_sign_in_when_identity_new_and_email_verified_creates_a_verified_account(
        self, client, oidc, audit_log
    ):
        response = oidc.sign_in("grace@example.com")

        assert response.headers["Location"] == "/account"
        user = user_by_email("grace@example.com")
        assert user is not None and user.is_verified
        assert not is_usable(user.password_hash)  # no password until a reset sets one
        (identity,) = identities_of(user)
        assert (identity.provider, identity.subject) == (PROVIDER, "grace@example.com")
        assert signed_in(client, response)["email"] == "grace@example.com"
        (created,) = audit_log("oidc.account_created")
        assert (created["user_id"], created["provider"]) == (user.id, PROVIDER)
        (line,) = audit_log("login.succeeded")
        assert (line["user_id"], line["method"]) == (user.id, f"oidc:{PROVIDER}")

    def test_account_made_through_a_provider_when_reset_gets_a_password(
        self, client, oidc, auth, outbox
    ):
        oidc.sign_in("grace@example.com")
        client.post("/api/v1/auth/password-reset", json={"email": "grace@example.com"})

        response = client.post(
            "/api/v1/auth/password-reset/confirm",
            json={"token": token_from(outbox[-1]), "new_password": "grace's own passphrase"},
        )

        assert response.status_code == 204
        login = auth.login("grace's own passphrase", email="grace@example.com")
        assert "access_token" in login.get_json()

    def test_sign_in_when_identity_linked_signs_that_user_in(self, client, oidc, user, auth):
        oidc.link(auth.headers_for(user), "ada-at-provider@example.com")
        sessions_before = sessions_of(user)

        response = oidc.sign_in("ada-at-provider@example.com")

        assert response.headers["Location"] == "/account"
        assert signed_in(client, response)["id"] == user.id
        assert sessions_of(user) == sessions_before + 1
        assert identities_of(user)[0].last_used_at is not None

    def test_sign_in_when_email_belongs_to_an_account_never_links_it(self, client, oidc, user):
        response = oidc.sign_in(user.email)

        assert problem_of(response) == "oidc_account_exists"
        assert identities_of(user) == []
        assert client.get_cookie("myapp_refresh", path="/api/v1/auth") is None

    def test_sign_in_when_email_unverified_creates_nothing(self, client, oidc):
        users_before = db.session.scalar(select(func.count()).select_from(User))

        response = oidc.sign_in("unverified-eve@example.com")

        assert problem_of(response) == "oidc_email_unverified"
        assert db.session.scalar(select(func.count()).select_from(User)) == users_before
        assert db.session.scalar(select(func.count()).select_from(OidcIdentity)) == 0

    def test_sign_in_when_user_has_two_factor_asks_for_the_second_step(
        self, client, oidc, user, auth, enrolled
    ):
        oidc.link(enrolled.headers, "ada-at-provider@example.com")

        response = oidc.sign_in("ada-at-provider@example.com")

        location = urlsplit(response.headers["Location"])
        assert location.path == "/account/signin"
        fragment = parse_qs(location.fragment)
        assert fragment["methods"] == ["totp,recovery_code"]
        assert client.get_cookie("myapp_refresh", path="/api/v1/auth") is None
        second = auth.login_mfa(fragment["mfa_token"][0], code=enrolled.authenticator.code())
        assert second.status_code == 200
        assert db.session.scalars(select(MfaChallenge)).all()[-1].used_at is not None

    def test_sign_in_when_account_deactivated_is_refused(self, client, oidc, user, auth, audit_log):
        oidc.link(auth.headers_for(user), "ada-at-provider@example.com")
        user.is_active = False
        db.session.commit()

        sessions_before = sessions_of(user)

        response = oidc.sign_in("ada-at-provider@example.com")

        assert problem_of(response) == "oidc_inactive"
        assert sessions_of(user) == sessions_before
        assert client.get_cookie("myapp_refresh", path="/api/v1/auth") is None
        (line,) = audit_log("oidc.failed")
        assert line["reason"] == "the linked account is inactive"


class TestProviderKeyRotation:
    def test_sign_in_when_provider_rotated_its_signing_key_fetches_the_new_one(self, app, client):
        old, new = (RSAKey.generate_key(2048, parameters={"kid": kid}) for kid in ("k1", "k2"))
        redirect_uris = [f"http://127.0.0.1:5000/api/v1/auth/oidc/{PROVIDER}/callback"]
        provider = OpenIdProvider(redirect_uris, jwks=key_set(old))
        app.config["OIDC_PROVIDERS"] = {PROVIDER: provider.settings()}
        actions = OidcActions(client, provider, "http://127.0.0.1:5000")
        try:
            assert actions.sign_in("grace@example.com").headers["Location"] == "/account"
            provider.stop()
            # The same issuer, now signing with a new key (the old one still published).
            provider = OpenIdProvider(redirect_uris, jwks=key_set(new, old), port=provider.port)

            with mock.patch.object(
                DISCOVERY, "refresh_keys", wraps=DISCOVERY.refresh_keys
            ) as refetch:
                response = actions.sign_in("hal@example.com")
        finally:
            provider.stop()
            app.config["OIDC_PROVIDERS"] = {}

        assert response.headers["Location"] == "/account"
        assert user_by_email("hal@example.com") is not None
        refetch.assert_called_once_with(f"http://127.0.0.1:{provider.port}", mock.ANY)


def key_set(*keys) -> dict:
    return {"keys": [key.as_dict(private=True) for key in keys]}


class TestTampering:
    def test_callback_when_state_tampered_is_refused(self, client, oidc, audit_log):
        url = oidc.callback_url("grace@example.com").replace("state=", "state=x")

        response = oidc.follow(url)

        assert problem_of(response) == "oidc_state"
        assert user_by_email("grace@example.com") is None
        (line,) = audit_log("oidc.failed")
        assert line["reason"] == "unknown, used, expired or another browser's"

    def test_callback_when_the_sign_in_ends_at_this_instant_is_refused(self, client, oidc):
        url = oidc.callback_url("grace@example.com")
        with freeze_time(utcnow()):  # time stands still: the callback comes at the end
            db.session.scalars(select(OidcAuthorization)).one().expires_at = utcnow()
            db.session.commit()

            response = oidc.follow(url)

        assert problem_of(response) == "oidc_state"
        assert user_by_email("grace@example.com") is None

    def test_callback_at_another_providers_address_is_refused(self, app, client, oidc):
        # Both providers are configured; the state was issued for the first.
        providers = app.config["OIDC_PROVIDERS"]
        app.config["OIDC_PROVIDERS"] = {**providers, "other": providers[PROVIDER]}
        url = oidc.callback_url("grace@example.com")

        response = oidc.follow(url.replace(f"/oidc/{PROVIDER}/callback", "/oidc/other/callback"))

        assert problem_of(response) == "oidc_state"
        assert user_by_email("grace@example.com") is None

    def test_callback_when_replayed_is_refused_the_second_time(self, client, oidc):
        url = oidc.callback_url("grace@example.com")
        assert oidc.follow(url).headers["Location"] == "/account"

        again = oidc.follow(url)

        assert problem_of(again) == "oidc_state"

    @pytest.mark.parametrize("cookie", [None, "another browser's secret"])
    def test_callback_when_from_another_browser_is_refused(self, app, client, oidc, cookie):
        url = oidc.callback_url("grace@example.com")
        client.delete_cookie("myapp_oidc", path="/api/v1/auth/oidc")
        if cookie is not None:
            client.set_cookie("myapp_oidc", cookie, path="/api/v1/auth/oidc")

        response = oidc.follow(url)

        assert problem_of(response) == "oidc_state"
        assert user_by_email("grace@example.com") is None

    def test_callback_when_nonce_does_not_match_the_id_token_is_refused(self, client, oidc):
        url = oidc.callback_url("grace@example.com")
        db.session.scalars(select(OidcAuthorization)).one().nonce = "not the nonce sent"
        db.session.commit()

        response = oidc.follow(url)

        assert problem_of(response) == "oidc_token"
        assert user_by_email("grace@example.com") is None

    def test_callback_when_iss_names_another_issuer_is_refused(self, client, oidc):
        url = oidc.callback_url("grace@example.com")
        mixed_up = url.replace("iss=http", "iss=https%3A%2F%2Fevil.example%2F&x=http")

        response = oidc.follow(mixed_up)

        assert problem_of(response) == "oidc_token"
        assert user_by_email("grace@example.com") is None

    def test_callback_when_provider_reports_an_error_lands_on_the_console(self, client, oidc):
        state = parse_qs(urlsplit(oidc.authorize().headers["Location"]).query)["state"][0]

        response = client.get(
            f"/api/v1/auth/oidc/{PROVIDER}/callback",
            query_string={"state": state, "error": "access_denied"},
        )

        assert problem_of(response) == "oidc_provider"


class TestLinking:
    def test_link_when_fresh_links_the_identity_and_tells_the_owner(
        self, client, oidc, user, auth, audit_log
    ):
        response = oidc.link(auth.headers_for(user), "ada-at-provider@example.com")

        assert response.headers["Location"] == "/account/linked"
        (identity,) = identities_of(user)
        assert identity.email == "ada-at-provider@example.com"
        assert [m.subject for m in mails("oidc_linked")] == ["An account was linked to yours"]
        (line,) = audit_log("oidc.linked")
        assert (line["user_id"], line["provider"]) == (user.id, PROVIDER)
        assert [e["user_id"] for e in audit_log("oidc.started")] == [user.id]

    def test_link_when_already_linked_to_this_user_keeps_one_and_tells_once(
        self, client, oidc, user, auth_headers
    ):
        oidc.link(auth_headers, "ada-at-provider@example.com")

        response = oidc.link(auth_headers, "ada-at-provider@example.com")

        assert response.headers["Location"] == "/account/linked"
        assert len(identities_of(user)) == 1
        assert len(mails("oidc_linked")) == 1

    def test_link_when_the_user_was_deactivated_meanwhile_is_refused_and_links_nothing(
        self, client, oidc, user, auth_headers, audit_log
    ):
        started = client.post(f"/api/v1/auth/oidc/{PROVIDER}/link", json={}, headers=auth_headers)
        callback = oidc.callback_url(
            "ada-at-provider@example.com", started.get_json()["authorize_url"]
        )
        user.is_active = False
        db.session.commit()

        response = oidc.follow(callback)

        assert problem_of(response) == "oidc_state"
        assert identities_of(user) == []
        (line,) = audit_log("oidc.failed")
        assert (line["code"], line["reason"]) == ("oidc_state", "the linking user is gone")

    def test_link_when_token_not_fresh_is_401(self, client, oidc, user, auth):
        response = client.post(
            f"/api/v1/auth/oidc/{PROVIDER}/link",
            json={},
            headers=auth.refreshed_headers_for(user),
        )

        assert response.status_code == 401
        assert db.session.scalar(select(func.count()).select_from(OidcAuthorization)) == 0

    def test_link_when_asked_too_often_is_429_per_user_and_stores_nothing(
        self, app, client, oidc, auth_headers, monkeypatch
    ):
        monkeypatch.setitem(app.config, "RATELIMIT_MFA_CHANGES", "2 per hour")
        for _ in range(2):
            response = client.post(
                f"/api/v1/auth/oidc/{PROVIDER}/link", json={}, headers=auth_headers
            )
            assert response.status_code == 200

        response = client.post(f"/api/v1/auth/oidc/{PROVIDER}/link", json={}, headers=auth_headers)

        assert response.status_code == 429
        assert response.headers["Retry-After"]
        assert response.get_json()["detail"] == "Too many new sign-in methods; try again later."
        assert db.session.scalar(select(func.count()).select_from(OidcAuthorization)) == 2

    def test_link_when_identity_linked_to_someone_else_is_refused(
        self, client, oidc, user, auth, audit_log
    ):
        other = UserFactory()
        oidc.link(auth.headers_for(other), "shared@example.com")

        response = oidc.link(auth.headers_for(user), "shared@example.com")

        assert problem_of(response) == "oidc_linked_elsewhere"
        assert identities_of(user) == []
        assert len(identities_of(other)) == 1
        (line,) = audit_log("oidc.failed")
        assert line["reason"] == "linked to another account"

    def test_identities_when_listed_show_the_users_own(self, client, oidc, user, auth_headers):
        oidc.link(auth_headers, "ada-at-provider@example.com")

        response = client.get(IDENTITIES, headers=auth_headers)

        assert response.status_code == 200
        (listed,) = response.get_json()
        assert (listed["provider"], listed["email"]) == (PROVIDER, "ada-at-provider@example.com")


class TestUnlinking:
    def test_unlink_when_the_account_has_a_password_removes_it_and_tells_the_owner(
        self, client, oidc, user, auth_headers, audit_log
    ):
        oidc.link(auth_headers, "ada-at-provider@example.com")
        identity_id = identities_of(user)[0].id

        response = client.delete(f"{IDENTITIES}/{identity_id}", headers=auth_headers)

        assert response.status_code == 204
        assert identities_of(user) == []
        assert [m.subject for m in mails("oidc_unlinked")] == ["An account was unlinked from yours"]
        (line,) = audit_log("oidc.unlinked")
        assert (line["user_id"], line["provider"]) == (user.id, PROVIDER)

    def test_unlink_when_a_passkey_remains_without_a_password_removes_it(
        self, client, oidc, authenticator
    ):
        oidc.sign_in("grace@example.com")  # an account without a password
        user = user_by_email("grace@example.com")
        headers = fresh_headers(user)
        register_passkey(client, headers, authenticator)

        response = client.delete(f"{IDENTITIES}/{identities_of(user)[0].id}", headers=headers)

        assert response.status_code == 204
        assert identities_of(user) == []

    def test_unlink_when_last_way_to_sign_in_is_409_and_keeps_it(self, client, oidc):
        oidc.sign_in("grace@example.com")  # an account without a password or passkey
        user = user_by_email("grace@example.com")
        identity_id = identities_of(user)[0].id

        response = client.delete(f"{IDENTITIES}/{identity_id}", headers=fresh_headers(user))

        assert response.status_code == 409
        assert response.get_json()["detail"].startswith("This is the account's last way")
        assert len(identities_of(user)) == 1
        assert mails("oidc_unlinked") == []

    def test_unlink_when_another_users_identity_is_404(self, client, oidc, user, auth):
        other = UserFactory()
        oidc.link(auth.headers_for(other), "other@example.com")
        identity_id = identities_of(other)[0].id

        response = client.delete(f"{IDENTITIES}/{identity_id}", headers=auth.headers_for(user))

        assert response.status_code == 404
        assert len(identities_of(other)) == 1


def fresh_headers(user) -> dict[str, str]:
    """A fresh access token of a new session of ``user``, issued as a sign-in would."""
    now = utcnow()
    session = AuthSession(
        user_id=user.id,
        refresh_jti="j",
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(days=1),
    )
    db.session.add(session)
    db.session.commit()
    return bearer(TokenService().issue_access(user, session.id, fresh=True).access_token)
