"""Passkeys through the HTTP API, answered by a software authenticator that makes
real WebAuthn objects (tests/support/passkeys.py): registration, management,
passwordless sign-in, the login's second step and re-authentication, and every
way an answer can be wrong (origin, RP ID, challenge, flags, counter, owner)."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy import func, select
from webauthn.helpers import base64url_to_bytes

from myapp.auth.models import (
    AuthSession,
    MfaChallenge,
    OidcIdentity,
    Passkey,
    RecoveryCode,
    WebAuthnChallenge,
)
from myapp.extensions import db
from myapp.passwords import unusable_password
from tests.conftest import bearer, fresh, mails, session_of
from tests.factories import UserFactory
from tests.support.passkeys import PASSKEYS, SoftAuthenticator, register_passkey

LOGIN = "/api/v1/auth/login"
LOGIN_MFA = "/api/v1/auth/login/mfa"
REAUTH = "/api/v1/auth/reauthenticate"
ME = "/api/v1/users/me"
MFA = "/api/v1/auth/mfa"
# A fresh-only endpoint with no side effect worth undoing: proves a token is fresh.
FRESH_ONLY = f"{PASSKEYS}/register/options"
SIGN_IN_FAILED = "The passkey could not be verified. Ask for new options and try again."
NOT_VERIFIED = (
    "The passkey could not be verified: ask for new options and try again "
    "(the options are single use and expire after a few minutes)."
)


def passkeys_of(user) -> list[Passkey]:
    db.session.expire_all()
    return list(db.session.scalars(select(Passkey).where(Passkey.user_id == user.id)))


def sessions_of(user) -> int:
    return db.session.scalar(
        select(func.count()).select_from(AuthSession).where(AuthSession.user_id == user.id)
    )


def sign_in(client, passkey):
    """Passwordless sign-in with ``passkey``'s device, over fresh options."""
    answer = passkey.authenticator.get(login_options(client))
    return client.post(f"{PASSKEYS}/login", json={"credential": answer})


def rejection(audit_log) -> tuple:
    """The one refusal the trail recorded: whose, in which ceremony, and why."""
    (line,) = audit_log("passkey.rejected")
    return line["user_id"], line["ceremony"], line["reason"]


def challenge_count() -> int:
    return db.session.scalar(select(func.count()).select_from(WebAuthnChallenge))


def submit_registration(client, headers, answer: dict, **body):
    return client.post(f"{PASSKEYS}/register", json={"credential": answer, **body}, headers=headers)


def login_options(client) -> dict:
    response = client.post(f"{PASSKEYS}/login/options")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def registration_options(client, headers, **body) -> dict:
    response = client.post(f"{PASSKEYS}/register/options", json=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def stale_headers(auth, user):
    """``user``'s refreshed (non-fresh) token, taken before the test adds a passkey
    (list it before ``passkey``: afterwards a password alone gives no tokens)."""
    return auth.refreshed_headers_for(user)


class TestRegistrationOptions:
    def test_options_when_asked_ask_for_a_discoverable_verified_passkey_of_this_site(
        self, app, client, user, auth_headers
    ):
        response = client.post(f"{PASSKEYS}/register/options", json={}, headers=auth_headers)

        assert response.status_code == 200
        options = response.get_json()
        assert options["rp"] == {"id": app.config["WEBAUTHN_RP_ID"], "name": "myapp"}
        assert options["user"]["name"] == user.email
        assert options["authenticatorSelection"]["residentKey"] == "required"
        assert options["authenticatorSelection"]["userVerification"] == "required"
        assert options["timeout"] == 300_000
        assert options["excludeCredentials"] == []
        # The user handle is random, never the database id.
        assert len(base64url_to_bytes(options["user"]["id"])) == 32
        stored = db.session.scalars(select(WebAuthnChallenge)).one()
        assert (stored.ceremony, stored.user_id, stored.used_at) == ("registration", user.id, None)
        assert base64url_to_bytes(options["challenge"]).hex() not in stored.challenge_hash

    def test_options_when_user_has_a_passkey_exclude_it_and_keep_its_user_handle(
        self, client, auth_headers, passkey
    ):
        options = registration_options(client, auth_headers)

        excluded = [base64url_to_bytes(c["id"]) for c in options["excludeCredentials"]]
        assert excluded == [passkey.credential.id]
        assert base64url_to_bytes(options["user"]["id"]) == passkey.credential.user_handle

    def test_options_when_token_not_fresh_is_401_and_stores_nothing(self, client, auth, user):
        response = client.post(
            f"{PASSKEYS}/register/options", json={}, headers=auth.refreshed_headers_for(user)
        )

        assert response.status_code == 401
        assert response.get_json()["detail"] == "A fresh token is required: log in again."
        assert challenge_count() == 0


class TestRegistration:
    def test_register_when_answer_verifies_stores_the_passkey_and_tells_the_owner(
        self, client, user, auth_headers, authenticator, audit_log
    ):
        options = registration_options(client, auth_headers)
        answer = authenticator.create(options)

        response = client.post(
            f"{PASSKEYS}/register",
            json={"name": "  Work   laptop ", "credential": answer},
            headers=auth_headers,
        )

        assert response.status_code == 201
        body = response.get_json()
        assert set(body) == {"id", "name", "created_at", "last_used_at", "transports"}
        assert (body["name"], body["last_used_at"], body["transports"]) == (
            "Work laptop",
            None,
            ["internal"],
        )
        (stored,) = passkeys_of(user)
        assert stored.id == body["id"]
        assert stored.credential_id == authenticator.credentials[0].id
        assert stored.user_handle == base64url_to_bytes(options["user"]["id"])
        assert fresh(user).is_mfa_enabled is True
        assert [m.subject for m in mails("passkey_added")] == [
            "A passkey was added to your account"
        ]
        (line,) = audit_log("passkey.registered")
        assert (line["user_id"], line["passkey_id"]) == (user.id, body["id"])

    def test_register_when_key_is_synced_with_a_running_counter_stores_it_as_made(
        self, client, user, auth_headers, authenticator, clock
    ):
        # A device's counter may start anywhere; a password manager's key is backed up.
        options = registration_options(client, auth_headers)
        answer = authenticator.create(
            options, sign_count=7, backed_up=True, transports=("hybrid", "internal")
        )

        response = submit_registration(client, auth_headers, answer)

        assert response.status_code == 201
        assert response.get_json()["transports"] == ["hybrid", "internal"]
        (stored,) = passkeys_of(user)
        assert (stored.sign_count, stored.backed_up) == (7, True)
        assert stored.created_at == clock().replace(tzinfo=UTC)

    def test_register_when_no_name_given_uses_the_options_name(
        self, client, user, auth_headers, authenticator
    ):
        options = registration_options(client, auth_headers, name="Phone")

        response = submit_registration(client, auth_headers, authenticator.create(options))

        assert response.get_json()["name"] == "Phone"

    def test_register_when_never_named_is_called_passkey(
        self, client, user, auth_headers, authenticator
    ):
        options = registration_options(client, auth_headers)

        response = submit_registration(client, auth_headers, authenticator.create(options))

        assert response.get_json()["name"] == "Passkey"

    @pytest.mark.parametrize(
        ("wrong", "why"),
        [
            pytest.param({"origin": "https://evil.example"}, "origin", id="origin of another site"),
            pytest.param({"rp_id": "evil.example"}, "RP ID", id="credential of another RP ID"),
            pytest.param({"user_verified": False}, "verif", id="user verification missing"),
        ],
    )
    def test_register_when_answer_wrong_is_400_and_stores_nothing(
        self, client, user, auth_headers, authenticator, audit_log, wrong, why
    ):
        answer = authenticator.create(registration_options(client, auth_headers), **wrong)

        response = submit_registration(client, auth_headers, answer)

        assert response.status_code == 400
        assert response.get_json()["detail"] == NOT_VERIFIED
        assert passkeys_of(user) == []
        assert fresh(user).is_mfa_enabled is False
        assert mails("passkey_added") == []
        (line,) = audit_log("passkey.rejected")
        assert (line["user_id"], line["ceremony"]) == (user.id, "registration")
        assert why in line["reason"]

    def test_register_when_challenge_replayed_is_400_the_second_time(
        self, client, user, auth_headers, authenticator, audit_log
    ):
        options = registration_options(client, auth_headers)
        first = authenticator.create(options)
        client.post(f"{PASSKEYS}/register", json={"credential": first}, headers=auth_headers)

        second = authenticator.create(options)  # another key, the same challenge
        response = submit_registration(client, auth_headers, second)

        assert response.status_code == 400
        assert [p.credential_id for p in passkeys_of(user)] == [authenticator.credentials[0].id]
        assert rejection(audit_log) == (user.id, "registration", "challenge")

    def test_register_when_answer_fails_spends_the_challenge_anyway(
        self, client, user, auth_headers, authenticator
    ):
        options = registration_options(client, auth_headers)
        wrong = authenticator.create(options, origin="https://evil.example")
        client.post(f"{PASSKEYS}/register", json={"credential": wrong}, headers=auth_headers)

        right = authenticator.create(options)
        response = submit_registration(client, auth_headers, right)

        assert response.status_code == 400
        assert passkeys_of(user) == []

    def test_register_when_challenge_expired_is_400(
        self, client, user, auth_headers, authenticator, clock
    ):
        options = registration_options(client, auth_headers)
        clock.tick(301)

        response = submit_registration(client, auth_headers, authenticator.create(options))

        assert response.status_code == 400
        assert passkeys_of(user) == []

    def test_register_when_challenge_was_another_users_is_400(
        self, client, auth, user, auth_headers, authenticator
    ):
        other = UserFactory()
        options = registration_options(client, auth.headers_for(other))

        response = submit_registration(client, auth_headers, authenticator.create(options))

        assert response.status_code == 400
        assert passkeys_of(user) == [] and passkeys_of(other) == []

    def test_register_when_challenge_was_for_sign_in_is_400(
        self, client, user, auth_headers, authenticator
    ):
        options = {**registration_options(client, auth_headers)}
        options["challenge"] = login_options(client)["challenge"]

        response = submit_registration(client, auth_headers, authenticator.create(options))

        assert response.status_code == 400
        assert passkeys_of(user) == []

    def test_register_when_passkey_already_registered_is_409(
        self, client, user, auth_headers, authenticator, passkey
    ):
        options = registration_options(client, auth_headers)
        again = authenticator.create(options, reuse=passkey.credential)

        response = submit_registration(client, auth_headers, again)

        assert response.status_code == 409
        assert response.get_json()["detail"] == "This passkey is already registered."
        assert len(passkeys_of(user)) == 1

    @pytest.mark.parametrize(
        "credential",
        [
            pytest.param("not an object", id="a string"),
            pytest.param({"id": "x"}, id="no response"),
            pytest.param(
                {
                    "id": "AA",
                    "rawId": "AA",
                    "type": "public-key",
                    "response": {"clientDataJSON": "!!", "attestationObject": "AA"},
                },
                id="client data not base64url JSON",
            ),
        ],
    )
    def test_register_when_credential_malformed_is_422_and_spends_nothing(
        self, client, user, auth_headers, credential
    ):
        registration_options(client, auth_headers)

        response = submit_registration(client, auth_headers, credential)

        assert response.status_code == 422
        assert "credential" in response.get_json()["errors"]["json"]
        assert db.session.scalars(select(WebAuthnChallenge)).one().used_at is None


class TestManagement:
    def test_list_when_user_has_passkeys_shows_only_theirs(
        self, client, auth, user, auth_headers, passkey, authenticator
    ):
        other = UserFactory()
        register_passkey(
            client, auth.headers_for(other), SoftAuthenticator.for_app(client.application)
        )

        response = client.get(PASSKEYS, headers=auth_headers)

        assert response.status_code == 200
        assert [p["id"] for p in response.get_json()] == [passkey.id]

    def test_rename_when_own_passkey_changes_its_name(self, client, user, auth_headers, passkey):
        response = client.patch(
            f"{PASSKEYS}/{passkey.id}", json={"name": "Old phone"}, headers=auth_headers
        )

        assert response.status_code == 200
        assert response.get_json()["name"] == "Old phone"
        assert passkeys_of(user)[0].name == "Old phone"

    def test_rename_when_another_users_passkey_is_404_and_changes_nothing(
        self, client, auth, passkey, user
    ):
        other_headers = auth.headers_for(UserFactory())

        response = client.patch(
            f"{PASSKEYS}/{passkey.id}", json={"name": "Mine now"}, headers=other_headers
        )

        assert response.status_code == 404
        assert response.get_json()["detail"] == "Passkey not found."
        assert passkeys_of(user)[0].name == "Laptop"

    def test_delete_when_own_passkey_removes_it_and_the_second_factor(
        self, client, user, auth_headers, passkey, audit_log
    ):
        response = client.delete(f"{PASSKEYS}/{passkey.id}", headers=auth_headers)

        assert response.status_code == 204
        assert passkeys_of(user) == []
        assert fresh(user).is_mfa_enabled is False
        assert [m.subject for m in mails("passkey_removed")] == [
            "A passkey was removed from your account"
        ]
        (line,) = audit_log("passkey.deleted")
        assert (line["user_id"], line["passkey_id"]) == (user.id, passkey.id)

    def test_delete_when_token_not_fresh_is_401_and_keeps_it(
        self, client, user, stale_headers, passkey
    ):
        response = client.delete(f"{PASSKEYS}/{passkey.id}", headers=stale_headers)

        assert response.status_code == 401
        assert len(passkeys_of(user)) == 1

    def test_delete_when_another_users_passkey_is_404_and_keeps_it(
        self, client, auth, user, passkey
    ):
        response = client.delete(
            f"{PASSKEYS}/{passkey.id}", headers=auth.headers_for(UserFactory())
        )

        assert response.status_code == 404
        assert len(passkeys_of(user)) == 1
        assert mails("passkey_removed") == []

    def test_delete_when_last_way_into_an_account_without_password_is_409(
        self, client, user, auth_headers, passkey
    ):
        user.password_hash = unusable_password()
        db.session.commit()

        response = client.delete(f"{PASSKEYS}/{passkey.id}", headers=auth_headers)

        assert response.status_code == 409
        assert response.get_json()["detail"].startswith("This is the account's last way to sign in")
        assert len(passkeys_of(user)) == 1
        assert fresh(user).is_mfa_enabled is True

    def test_delete_when_a_linked_provider_account_remains_without_password_removes_it(
        self, client, user, auth_headers, passkey
    ):
        user.password_hash = unusable_password()
        db.session.add(OidcIdentity(user_id=user.id, provider="example", subject="ada"))
        db.session.commit()

        response = client.delete(f"{PASSKEYS}/{passkey.id}", headers=auth_headers)

        assert response.status_code == 204
        assert passkeys_of(user) == []

    def test_delete_when_another_passkey_remains_keeps_the_second_factor(
        self, client, user, auth_headers, passkey, authenticator
    ):
        user.password_hash = unusable_password()
        db.session.commit()
        register_passkey(client, auth_headers, authenticator, name="Phone")

        response = client.delete(f"{PASSKEYS}/{passkey.id}", headers=auth_headers)

        assert response.status_code == 204
        assert [p.name for p in passkeys_of(user)] == ["Phone"]
        assert fresh(user).is_mfa_enabled is True


class TestPasswordlessSignIn:
    def test_options_when_asked_allow_any_discoverable_passkey(self, app, client):
        options = login_options(client)

        assert options["rpId"] == app.config["WEBAUTHN_RP_ID"]
        assert options["allowCredentials"] == []
        assert options["userVerification"] == "required"
        assert options["timeout"] == 300_000  # as long as the challenge lives
        stored = db.session.scalars(select(WebAuthnChallenge)).one()
        assert (stored.ceremony, stored.user_id) == ("login", None)

    def test_sign_in_when_passkey_verifies_starts_a_session_with_fresh_tokens(
        self, client, user, passkey, audit_log
    ):
        sessions_before = sessions_of(user)
        answer = passkey.authenticator.get(login_options(client))

        response = client.post(f"{PASSKEYS}/login", json={"credential": answer})

        assert response.status_code == 200
        body = response.get_json()
        assert {"access_token", "refresh_token", "expires_in"} <= set(body)
        assert "mfa_required" not in body  # a verified passkey is both factors
        assert (
            client.post(FRESH_ONLY, json={}, headers=bearer(body["access_token"])).status_code
            == 200
        )
        assert sessions_of(user) == sessions_before + 1
        (stored,) = passkeys_of(user)
        assert (stored.sign_count, stored.last_used_at is not None) == (1, True)
        assert stored.backed_up is False
        (line,) = audit_log("login.succeeded")
        assert (line["user_id"], line["method"]) == (user.id, "passkey")
        assert line["session_id"] == session_of(body["access_token"])
        (line,) = audit_log("passkey.used")
        assert (line["user_id"], line["passkey_id"], line["ceremony"]) == (
            user.id,
            passkey.id,
            "login",
        )

    def test_sign_in_when_the_key_has_started_syncing_records_its_backup_state(
        self, client, user, passkey
    ):
        # WebAuthn: the backup state may change after registration; store it as it is now.
        answer = passkey.authenticator.get(login_options(client), backed_up=True)

        response = client.post(f"{PASSKEYS}/login", json={"credential": answer})

        assert response.status_code == 200
        assert passkeys_of(user)[0].backed_up is True

    def test_sign_in_when_cookie_transport_asked_sets_the_refresh_cookie(self, client, passkey):
        answer = passkey.authenticator.get(login_options(client))

        response = client.post(
            f"{PASSKEYS}/login",
            json={"credential": answer},
            headers={"X-Token-Transport": "cookie"},
        )

        assert response.status_code == 200
        assert "refresh_token" not in response.get_json()
        assert client.get_cookie("myapp_refresh", path="/api/v1/auth") is not None

    def test_sign_in_when_account_has_two_factor_on_needs_no_code(
        self, client, user, enrolled, passkey
    ):
        answer = passkey.authenticator.get(login_options(client))

        response = client.post(f"{PASSKEYS}/login", json={"credential": answer})

        assert response.status_code == 200
        assert "access_token" in response.get_json()

    @pytest.mark.parametrize(
        ("wrong", "why"),
        [
            pytest.param({"origin": "https://evil.example"}, "origin", id="origin of another site"),
            pytest.param({"rp_id": "evil.example"}, "RP ID", id="assertion for another RP ID"),
            pytest.param({"user_verified": False}, "verif", id="user verification missing"),
        ],
    )
    def test_sign_in_when_assertion_wrong_is_401_and_starts_nothing(
        self, client, user, passkey, audit_log, wrong, why
    ):
        sessions_before = sessions_of(user)
        answer = passkey.authenticator.get(login_options(client), **wrong)

        response = client.post(f"{PASSKEYS}/login", json={"credential": answer})

        assert response.status_code == 401
        assert response.get_json()["detail"] == SIGN_IN_FAILED
        assert sessions_of(user) == sessions_before
        assert passkeys_of(user)[0].sign_count == 0
        (line,) = audit_log("passkey.rejected")
        # The client hears only "failed"; the trail says which check refused it.
        assert line["ceremony"] == "login"
        assert why in line["reason"]

    def test_sign_in_when_challenge_replayed_is_401_the_second_time(
        self, client, user, passkey, audit_log
    ):
        options = login_options(client)
        first = client.post(
            f"{PASSKEYS}/login", json={"credential": passkey.authenticator.get(options)}
        )
        sessions_after_first = sessions_of(user)

        again = client.post(
            f"{PASSKEYS}/login", json={"credential": passkey.authenticator.get(options)}
        )

        assert first.status_code == 200
        assert again.status_code == 401
        assert sessions_of(user) == sessions_after_first
        assert rejection(audit_log) == (None, "login", "challenge")

    def test_sign_in_when_challenge_expired_is_401(self, client, user, passkey, clock):
        options = login_options(client)
        clock.tick(301)

        response = client.post(
            f"{PASSKEYS}/login", json={"credential": passkey.authenticator.get(options)}
        )

        assert response.status_code == 401

    def test_sign_in_when_challenge_issued_for_registration_is_401(
        self, client, user, auth_headers, passkey
    ):
        options = {"challenge": registration_options(client, auth_headers)["challenge"]}

        response = client.post(
            f"{PASSKEYS}/login", json={"credential": passkey.authenticator.get(options)}
        )

        assert response.status_code == 401

    def test_sign_in_when_counter_goes_back_is_401_and_audited_as_a_clone(
        self, client, user, passkey, audit_log
    ):
        client.post(
            f"{PASSKEYS}/login",
            json={"credential": passkey.authenticator.get(login_options(client), sign_count=5)},
        )
        sessions_before = sessions_of(user)

        clone = passkey.authenticator.get(login_options(client), sign_count=3)
        response = client.post(f"{PASSKEYS}/login", json={"credential": clone})

        assert response.status_code == 401
        assert sessions_of(user) == sessions_before
        assert passkeys_of(user)[0].sign_count == 5
        (line,) = audit_log("passkey.counter_regressed")
        assert (line["user_id"], line["passkey_id"]) == (user.id, passkey.id)
        assert (line["stored"], line["received"]) == (5, 3)

    def test_sign_in_when_authenticator_keeps_no_counter_accepts_zero_again(
        self, client, user, passkey
    ):
        for _ in range(2):
            answer = passkey.authenticator.get(login_options(client), sign_count=0)
            assert client.post(f"{PASSKEYS}/login", json={"credential": answer}).status_code == 200

    def test_sign_in_when_passkey_unknown_is_401_and_audited_without_a_user(
        self, app, client, user, passkey, audit_log
    ):
        stranger = SoftAuthenticator.for_app(app)
        stranger.create(
            {"rp": {"id": app.config["WEBAUTHN_RP_ID"]}, "user": {"id": "AAAA"}, "challenge": "AA"}
        )

        response = client.post(
            f"{PASSKEYS}/login", json={"credential": stranger.get(login_options(client))}
        )

        assert response.status_code == 401
        assert response.get_json()["detail"] == SIGN_IN_FAILED
        (line,) = audit_log("login.failed")
        assert (line["user_id"], line["reason"]) == (None, "passkey")
        assert rejection(audit_log) == (None, "login", "unknown_credential")

    def test_sign_in_when_user_handle_is_not_the_passkeys_is_401_and_starts_nothing(
        self, client, user, passkey, audit_log
    ):
        # The key signs, but names another account: the stored handle decides.
        passkey.credential.user_handle = b"someone else"
        sessions_before = sessions_of(user)

        response = sign_in(client, passkey)

        assert response.status_code == 401
        assert sessions_of(user) == sessions_before
        assert rejection(audit_log) == (None, "login", "user_handle")

    def test_sign_in_when_account_deactivated_is_401_and_audited_with_its_user(
        self, client, user, passkey, audit_log
    ):
        user.is_active = False
        db.session.commit()
        sessions_before = sessions_of(user)

        response = sign_in(client, passkey)

        assert response.status_code == 401
        assert sessions_of(user) == sessions_before
        # The answer cannot tell a deactivated account from a wrong passkey; the trail can.
        (line,) = audit_log("login.failed")
        assert (line["user_id"], line["reason"]) == (user.id, "passkey")


class TestSecondFactor:
    def test_password_login_when_user_has_a_passkey_asks_for_it(self, auth, user, passkey):
        response = auth.login(email=user.email)

        assert response.get_json()["mfa_required"] is True
        assert response.get_json()["methods"] == ["passkey"]

    def test_status_when_user_has_a_passkey_counts_it(self, client, auth_headers, passkey):
        response = client.get(MFA, headers=auth_headers)

        assert response.get_json() == {
            "totp": False,
            "passkeys": 1,
            "recovery_codes_left": 0,
            "methods": ["passkey"],
        }

    def test_options_when_mfa_token_valid_list_the_users_passkeys(
        self, client, auth, user, passkey
    ):
        mfa_token = auth.mfa_token_for(user)

        response = client.post(f"{LOGIN_MFA}/passkey/options", json={"mfa_token": mfa_token})

        assert response.status_code == 200
        allowed = [base64url_to_bytes(c["id"]) for c in response.get_json()["allowCredentials"]]
        assert allowed == [passkey.credential.id]
        stored = db.session.scalars(select(WebAuthnChallenge)).all()[-1]
        assert (stored.ceremony, stored.user_id) == ("second_factor", user.id)

    @pytest.mark.parametrize(
        ("stored", "listed"),
        [
            # Stored by an earlier py_webauthn: "smoke-signal" is one this version does not know.
            ("usb,smoke-signal,nfc", ["usb", "nfc"]),
            ("", None),  # none known: the browser chooses
        ],
        ids=["known ones", "none"],
    )
    def test_options_when_passkey_has_transports_list_the_ones_browsers_know(
        self, client, auth, user, passkey, stored, listed
    ):
        passkeys_of(user)[0].transports = stored
        db.session.commit()

        response = client.post(
            f"{LOGIN_MFA}/passkey/options", json={"mfa_token": auth.mfa_token_for(user)}
        )

        (allowed,) = response.get_json()["allowCredentials"]
        assert allowed.get("transports") == listed

    def test_options_when_mfa_token_unknown_is_401(self, client):
        response = client.post(f"{LOGIN_MFA}/passkey/options", json={"mfa_token": "nope"})

        assert response.status_code == 401
        assert challenge_count() == 0

    @pytest.mark.parametrize("why", ["expired", "account-deactivated"])
    def test_options_when_mfa_token_no_longer_valid_is_401_and_stores_no_challenge(
        self, client, auth, user, passkey, clock, why
    ):
        mfa_token = auth.mfa_token_for(user)
        if why == "expired":
            clock.tick(300)
        else:
            user.is_active = False
            db.session.commit()
        challenges = challenge_count()

        response = client.post(f"{LOGIN_MFA}/passkey/options", json={"mfa_token": mfa_token})

        assert response.status_code == 401
        assert "mfa_token is invalid" in response.get_json()["detail"]
        assert challenge_count() == challenges

    def test_options_when_user_has_no_passkey_is_409(self, client, auth, user, enrolled):
        response = client.post(
            f"{LOGIN_MFA}/passkey/options", json={"mfa_token": auth.mfa_token_for(user)}
        )

        assert response.status_code == 409
        assert response.get_json()["detail"] == "This account has no passkey."

    def test_second_step_when_passkey_verifies_starts_a_session(
        self, client, auth, user, passkey, audit_log
    ):
        mfa_token = auth.mfa_token_for(user)
        options = client.post(f"{LOGIN_MFA}/passkey/options", json={"mfa_token": mfa_token})
        answer = passkey.authenticator.get(options.get_json())

        response = auth.login_mfa(mfa_token, passkey=answer)

        assert response.status_code == 200
        assert "access_token" in response.get_json()
        assert passkeys_of(user)[0].sign_count == 1
        assert audit_log("login.succeeded")[-1]["mfa"] == "passkey"
        (line,) = audit_log("passkey.used")
        assert (line["user_id"], line["ceremony"]) == (user.id, "second_factor")

    def test_second_step_when_passkey_is_another_users_is_401_and_counts_an_attempt(
        self, client, auth, user, passkey, audit_log
    ):
        other = UserFactory()
        theirs = register_passkey(
            client, auth.headers_for(other), SoftAuthenticator.for_app(client.application)
        )
        mfa_token = auth.mfa_token_for(user)
        options = client.post(f"{LOGIN_MFA}/passkey/options", json={"mfa_token": mfa_token})
        answer = theirs.authenticator.get(options.get_json(), credential=theirs.credential)

        response = auth.login_mfa(mfa_token, passkey=answer)

        assert response.status_code == 401
        assert response.get_json()["detail"] == "Invalid code."
        assert db.session.scalars(select(MfaChallenge)).one().failed_attempts == 1
        assert rejection(audit_log) == (user.id, "second_factor", "unknown_credential")

    def test_second_step_when_challenge_was_for_passwordless_sign_in_is_401(
        self, client, auth, user, passkey, audit_log
    ):
        mfa_token = auth.mfa_token_for(user)

        response = auth.login_mfa(
            mfa_token, passkey=passkey.authenticator.get(login_options(client))
        )

        assert response.status_code == 401
        assert rejection(audit_log) == (user.id, "second_factor", "challenge")

    def test_second_step_when_user_handle_is_not_the_passkeys_is_401(
        self, client, auth, user, passkey, audit_log
    ):
        mfa_token = auth.mfa_token_for(user)
        options = client.post(f"{LOGIN_MFA}/passkey/options", json={"mfa_token": mfa_token})
        passkey.credential.user_handle = b"someone else"

        response = auth.login_mfa(mfa_token, passkey=passkey.authenticator.get(options.get_json()))

        assert response.status_code == 401
        assert rejection(audit_log) == (user.id, "second_factor", "user_handle")

    def test_disable_totp_when_a_passkey_remains_keeps_two_factor_on(
        self, client, user, enrolled, passkey
    ):
        response = client.delete(
            f"{MFA}/totp", json={"code": enrolled.authenticator.code()}, headers=enrolled.headers
        )

        assert response.status_code == 204
        assert fresh(user).is_mfa_enabled is True
        assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 10
        assert client.get(MFA, headers=enrolled.headers).get_json()["methods"] == [
            "passkey",
            "recovery_code",
        ]

    def test_admin_reset_when_user_has_passkeys_removes_them(
        self, client, user, passkey, admin_headers
    ):
        response = client.delete(f"/api/v1/users/{user.id}/mfa", headers=admin_headers)

        assert response.status_code == 204
        assert passkeys_of(user) == []
        assert fresh(user).is_mfa_enabled is False


class TestReauthentication:
    def reauth_options(self, client, headers):
        response = client.post(f"{REAUTH}/passkey/options", headers=headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def test_reauthenticate_when_passkey_verifies_gives_a_fresh_token_of_the_session(
        self, client, user, stale_headers, passkey
    ):
        stale = stale_headers
        answer = passkey.authenticator.get(self.reauth_options(client, stale))

        response = client.post(REAUTH, json={"passkey": answer}, headers=stale)

        assert response.status_code == 200
        token = response.get_json()["access_token"]
        assert client.post(FRESH_ONLY, json={}, headers=bearer(token)).status_code == 200

    def test_reauthenticate_when_passkey_wrong_is_403(
        self, client, user, stale_headers, passkey, audit_log
    ):
        stale = stale_headers
        answer = passkey.authenticator.get(
            self.reauth_options(client, stale), origin="https://evil.example"
        )

        response = client.post(REAUTH, json={"passkey": answer}, headers=stale)

        assert response.status_code == 403
        assert response.get_json()["detail"] == "The passkey could not be verified."
        (line,) = audit_log("passkey.rejected")
        assert (line["user_id"], line["ceremony"]) == (user.id, "reauthentication")
        assert "origin" in line["reason"]

    def test_reauthenticate_when_password_and_passkey_both_given_is_422(
        self, client, auth_headers, passkey
    ):
        answer = passkey.authenticator.get(self.reauth_options(client, auth_headers))

        response = client.post(
            REAUTH, json={"password": "x", "passkey": answer}, headers=auth_headers
        )

        assert response.status_code == 422

    def test_options_when_user_has_no_passkey_is_409(self, client, auth_headers):
        response = client.post(f"{REAUTH}/passkey/options", headers=auth_headers)

        assert response.status_code == 409
        assert challenge_count() == 0
