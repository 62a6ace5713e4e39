"""Each use case is one transaction: a request that changes something commits
exactly once; a read, or a request refused, commits nothing (its work rolls back).

Commits are counted on the session class itself, so a commit from anywhere (a
repository, a route, a listener) would show here. Email is only queued (rows of
the same transaction), as in production.
"""

from __future__ import annotations

import pytest

from myapp.extensions import db
from tests.conftest import AuthActions, bearer, token_from
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.mfa import Authenticator, enrol
from tests.support.passkeys import register_passkey

NEW_PASSWORD = "another long password"


@pytest.fixture
def commits(app, mocker):
    """Every ``commit()`` on the app's sessions (a spy: they still commit). A
    repository's savepoint is not a commit of the session, so it is not counted."""
    return mocker.spy(type(db.session()), "commit")


@pytest.fixture
def login(auth, user) -> dict:
    return auth.login(email=user.email).get_json()


# Each case arranges what its request needs, then names the request:
# arrange(client, ctx) -> (method, url, keyword arguments of client.open).
def register(client, ctx):
    return (
        "POST",
        "/api/v1/auth/register",
        {"json": {"email": "new@example.com", "username": "new", "password": NEW_PASSWORD}},
    )


def login_request(client, ctx):
    return (
        "POST",
        "/api/v1/auth/login",
        {"json": {"email": ctx["user"].email, "password": DEFAULT_PASSWORD}},
    )


def refresh(client, ctx):
    return "POST", "/api/v1/auth/refresh", {"headers": bearer(ctx["login"]["refresh_token"])}


def logout(client, ctx):
    return "POST", "/api/v1/auth/logout", {"headers": bearer(ctx["login"]["access_token"])}


def logout_all(client, ctx):
    return "POST", "/api/v1/auth/logout-all", {"headers": bearer(ctx["login"]["access_token"])}


def revoke_session(client, ctx):
    headers = bearer(ctx["login"]["access_token"])
    (session,) = client.get("/api/v1/auth/sessions", headers=headers).get_json()
    return "DELETE", f"/api/v1/auth/sessions/{session['id']}", {"headers": headers}


def request_reset(client, ctx):
    return "POST", "/api/v1/auth/password-reset", {"json": {"email": ctx["user"].email}}


def reset_for_unknown_email(client, ctx):
    return "POST", "/api/v1/auth/password-reset", {"json": {"email": "nobody@example.com"}}


def confirm_reset(client, ctx):
    client.post("/api/v1/auth/password-reset", json={"email": ctx["user"].email})
    token = token_from(ctx["outbox"][-1])
    return (
        "POST",
        "/api/v1/auth/password-reset/confirm",
        {"json": {"token": token, "new_password": NEW_PASSWORD}},
    )


def verify_email(client, ctx):
    client.post("/api/v1/auth/verify-email/resend", headers=bearer(ctx["login"]["access_token"]))
    token = token_from(ctx["outbox"][-1])
    return "POST", "/api/v1/auth/verify-email", {"json": {"token": token}}


def resend_verification(client, ctx):
    headers = bearer(ctx["login"]["access_token"])
    return "POST", "/api/v1/auth/verify-email/resend", {"headers": headers}


def update_me(client, ctx):
    headers = bearer(ctx["login"]["access_token"])
    return "PATCH", "/api/v1/users/me", {"headers": headers, "json": {"email": "n@example.com"}}


def change_password(client, ctx):
    return (
        "PUT",
        "/api/v1/users/me/password",
        {
            "headers": bearer(ctx["login"]["access_token"]),
            "json": {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        },
    )


def delete_me(client, ctx):
    return (
        "DELETE",
        "/api/v1/users/me",
        {
            "headers": bearer(ctx["login"]["access_token"]),
            "json": {"password": DEFAULT_PASSWORD},
        },
    )


def admin_update(client, ctx):
    other = UserFactory()
    return (
        "PATCH",
        f"/api/v1/users/{other.id}",
        {
            "headers": ctx["admin_headers"],
            "json": {"is_active": False},
        },
    )


def admin_delete(client, ctx):
    other = UserFactory()
    return "DELETE", f"/api/v1/users/{other.id}", {"headers": ctx["admin_headers"]}


# -- two-factor sign-in: ctx["mfa"] enrols the user first (through the API) --
def mfa_setup(client, ctx):
    return "POST", "/api/v1/auth/mfa/totp/setup", {"headers": bearer(ctx["login"]["access_token"])}


def code_of(authenticator: Authenticator, right: bool) -> str:
    return authenticator.code() if right else authenticator.wrong_code()


def confirm_request(client, ctx, *, right: bool):
    headers = bearer(ctx["login"]["access_token"])
    secret = client.post("/api/v1/auth/mfa/totp/setup", headers=headers).get_json()["secret"]
    body = {"code": code_of(Authenticator(secret), right)}
    return "POST", "/api/v1/auth/mfa/totp/confirm", {"headers": headers, "json": body}


def second_step_request(client, ctx, *, right: bool):
    enrolment = ctx["mfa"]()
    token = AuthActions(client).mfa_token_for(ctx["user"])
    body = {"mfa_token": token, "code": code_of(enrolment.authenticator, right)}
    return "POST", "/api/v1/auth/login/mfa", {"json": body}


def disable_request(client, ctx, *, right: bool):
    enrolment = ctx["mfa"]()
    body = {"code": code_of(enrolment.authenticator, right)}
    return "DELETE", "/api/v1/auth/mfa/totp", {"headers": enrolment.headers, "json": body}


def mfa_confirm(client, ctx):
    return confirm_request(client, ctx, right=True)


def mfa_password_step(client, ctx):
    ctx["mfa"]()
    return login_request(client, ctx)  # stores the second step


def mfa_code_step(client, ctx):
    return second_step_request(client, ctx, right=True)


def mfa_wrong_code(client, ctx):
    return second_step_request(client, ctx, right=False)


def reauthenticate_with_code(client, ctx):
    enrolment = ctx["mfa"]()
    body = {"password": DEFAULT_PASSWORD, "code": enrolment.authenticator.code()}
    return "POST", "/api/v1/auth/reauthenticate", {"headers": enrolment.headers, "json": body}


def disable_totp(client, ctx):
    return disable_request(client, ctx, right=True)


def regenerate_recovery_codes(client, ctx):
    enrolment = ctx["mfa"]()
    return "POST", "/api/v1/auth/mfa/recovery-codes", {"headers": enrolment.headers}


def admin_reset_mfa(client, ctx):
    ctx["mfa"]()
    return "DELETE", f"/api/v1/users/{ctx['user'].id}/mfa", {"headers": ctx["admin_headers"]}


# -- passkeys: ctx["passkey"]() registers one for the user (through the API) --
PASSKEYS = "/api/v1/auth/passkeys"


def passkey_register_options(client, ctx):
    return "POST", f"{PASSKEYS}/register/options", {"headers": ctx["headers"], "json": {}}


def passkey_register(client, ctx):
    options = client.post(f"{PASSKEYS}/register/options", json={}, headers=ctx["headers"])
    answer = ctx["authenticator"].create(options.get_json())
    body = {"credential": answer}
    return "POST", f"{PASSKEYS}/register", {"headers": ctx["headers"], "json": body}


def passkey_sign_in_request(client, ctx, **wrong):
    registered = ctx["passkey"]()
    options = client.post(f"{PASSKEYS}/login/options").get_json()
    body = {"credential": registered.authenticator.get(options, **wrong)}
    return "POST", f"{PASSKEYS}/login", {"json": body}


def passkey_login_options(client, ctx):
    return "POST", f"{PASSKEYS}/login/options", {}


def passkey_sign_in(client, ctx):
    return passkey_sign_in_request(client, ctx)


def passkey_sign_in_wrong_origin(client, ctx):
    return passkey_sign_in_request(client, ctx, origin="https://evil.example")


def passkey_rename(client, ctx):
    registered = ctx["passkey"]()
    body = {"name": "Renamed"}
    return "PATCH", f"{PASSKEYS}/{registered.id}", {"headers": ctx["headers"], "json": body}


def passkey_delete(client, ctx):
    registered = ctx["passkey"]()
    return "DELETE", f"{PASSKEYS}/{registered.id}", {"headers": ctx["headers"]}


def passkey_second_factor_options(client, ctx):
    ctx["passkey"]()
    body = {"mfa_token": AuthActions(client).mfa_token_for(ctx["user"])}
    return "POST", "/api/v1/auth/login/mfa/passkey/options", {"json": body}


def passkey_reauthenticate(client, ctx):
    registered = ctx["passkey"]()
    options = client.post("/api/v1/auth/reauthenticate/passkey/options", headers=ctx["headers"])
    body = {"passkey": registered.authenticator.get(options.get_json())}
    return "POST", "/api/v1/auth/reauthenticate", {"headers": ctx["headers"], "json": body}


# (arrange, expected status): requests that change something, one commit each.
WRITES = [
    (register, 201),
    (login_request, 200),
    (refresh, 200),
    (logout, 204),
    (logout_all, 204),
    (revoke_session, 204),
    (request_reset, 202),
    # The same work as for a known address: one queued row (the worker finds nobody).
    (reset_for_unknown_email, 202),
    (confirm_reset, 204),
    (verify_email, 200),
    (resend_verification, 202),
    (update_me, 202),  # a new email waits for its link
    (change_password, 204),
    (delete_me, 204),
    (admin_update, 200),
    (admin_delete, 204),
    (mfa_setup, 200),
    (mfa_confirm, 200),
    (mfa_password_step, 200),
    (mfa_code_step, 200),
    # A wrong code is counted against its mfa_token: that count lands, as a 401.
    (mfa_wrong_code, 401),
    (reauthenticate_with_code, 200),  # the code's step is recorded (replay)
    (disable_totp, 204),
    (regenerate_recovery_codes, 200),
    (admin_reset_mfa, 204),
    (passkey_register_options, 200),  # the challenge is stored
    (passkey_register, 201),
    (passkey_login_options, 200),
    (passkey_sign_in, 200),
    # A refused answer still spends its challenge: that lands, as a 401.
    (passkey_sign_in_wrong_origin, 401),
    (passkey_rename, 200),
    (passkey_delete, 204),
    (passkey_second_factor_options, 200),
    (passkey_reauthenticate, 200),  # the challenge and the counter are recorded
]


def me(client, ctx):
    return "GET", "/api/v1/users/me", {"headers": bearer(ctx["login"]["access_token"])}


def sessions(client, ctx):
    return "GET", "/api/v1/auth/sessions", {"headers": bearer(ctx["login"]["access_token"])}


def admin_list(client, ctx):
    return "GET", "/api/v1/users", {"headers": ctx["admin_headers"]}


def admin_get(client, ctx):
    return "GET", f"/api/v1/users/{ctx['user'].id}", {"headers": ctx["admin_headers"]}


def wrong_password(client, ctx):
    return (
        "POST",
        "/api/v1/auth/login",
        {"json": {"email": ctx["user"].email, "password": "not the password"}},
    )


def taken_email(client, ctx):
    return (
        "POST",
        "/api/v1/auth/register",
        {"json": {"email": ctx["user"].email, "username": "other", "password": NEW_PASSWORD}},
    )


def wrong_current_password(client, ctx):
    return (
        "PUT",
        "/api/v1/users/me/password",
        {
            "headers": bearer(ctx["login"]["access_token"]),
            "json": {"current_password": "not the password", "new_password": NEW_PASSWORD},
        },
    )


def admin_self_lockout(client, ctx):
    admin_id = client.get("/api/v1/users/me", headers=ctx["admin_headers"]).get_json()["id"]
    return (
        "PATCH",
        f"/api/v1/users/{admin_id}",
        {
            "headers": ctx["admin_headers"],
            "json": {"is_admin": False},
        },
    )


def mfa_status(client, ctx):
    return "GET", "/api/v1/auth/mfa", {"headers": bearer(ctx["login"]["access_token"])}


def reauthenticate_password_only(client, ctx):
    headers = bearer(ctx["login"]["access_token"])
    return (
        "POST",
        "/api/v1/auth/reauthenticate",
        {"headers": headers, "json": {"password": DEFAULT_PASSWORD}},
    )


def passkey_list(client, ctx):
    return "GET", PASSKEYS, {"headers": ctx["headers"]}


def passkey_register_malformed(client, ctx):
    body = {"credential": {"id": "not a credential"}}
    return "POST", f"{PASSKEYS}/register", {"headers": ctx["headers"], "json": body}


def mfa_confirm_wrong_code(client, ctx):
    return confirm_request(client, ctx, right=False)


def disable_totp_wrong_code(client, ctx):
    return disable_request(client, ctx, right=False)


# Reads, and requests refused: no commit at all.
NO_COMMIT = [
    (me, 200),
    (sessions, 200),
    (admin_list, 200),
    (admin_get, 200),
    (wrong_password, 401),
    (taken_email, 409),
    (wrong_current_password, 403),
    (admin_self_lockout, 409),
    (mfa_status, 200),
    (reauthenticate_password_only, 200),  # a new token, nothing stored
    (mfa_confirm_wrong_code, 400),
    (disable_totp_wrong_code, 403),
    (passkey_list, 200),
    (passkey_register_malformed, 422),
]


@pytest.fixture
def ctx(client, user, login, admin_headers, outbox, clock, authenticator) -> dict:
    return {
        "user": user,
        "login": login,
        "admin_headers": admin_headers,
        "outbox": outbox,
        # Turns TOTP on for the user from their login's session (called by the cases
        # that need it; the clock moves on, so the next code is new).
        "mfa": lambda: enrol(client, bearer(login["access_token"]), clock),
        "headers": bearer(login["access_token"]),
        "authenticator": authenticator,
        "passkey": lambda: register_passkey(client, bearer(login["access_token"]), authenticator),
    }


def send(client, ctx, commits, arrange):
    method, url, kwargs = arrange(client, ctx)
    commits.reset_mock()  # count the request under test only
    # Without eager delivery, which runs use cases of its own after the commit (a
    # claim, an outcome per message), as a worker would in production.
    client.application.config["MAIL_EAGER"] = False
    try:
        return client.open(url, method=method, **kwargs)
    finally:
        client.application.config["MAIL_EAGER"] = True


class TestCommitsPerRequest:
    @pytest.mark.parametrize(
        ("arrange", "status", "expected"),
        [pytest.param(*case, 1, id=case[0].__name__) for case in WRITES]
        + [pytest.param(*case, 0, id=case[0].__name__) for case in NO_COMMIT],
    )
    def test_request_when_answered_commits_once_per_write_and_never_otherwise(
        self, client, ctx, commits, arrange, status, expected
    ):
        response = send(client, ctx, commits, arrange)

        assert response.status_code == status, response.get_json()
        assert commits.call_count == expected

    def test_provider_callback_when_signing_in_commits_the_spent_state_then_the_outcome(
        self, client, oidc, commits
    ):
        callback = oidc.callback_url("grace@example.com")
        commits.reset_mock()

        response = oidc.follow(callback)

        assert response.headers["Location"] == "/account"
        # Two use cases by design: the provider is asked between them, with no
        # transaction open (ARCHITECTURE, "Sign-in with OpenID Providers").
        assert commits.call_count == 2

    def test_refresh_when_token_reused_commits_the_revocation_once(self, client, ctx, commits):
        spent = ctx["login"]["refresh_token"]
        client.post("/api/v1/auth/refresh", headers=bearer(spent))
        commits.reset_mock()

        response = client.post("/api/v1/auth/refresh", headers=bearer(spent))

        assert response.status_code == 401
        assert response.get_json()["detail"].startswith("Refresh token reuse detected")
        assert commits.call_count == 1  # the family's revocation lands although the answer is 401
