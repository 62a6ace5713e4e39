"""The audit trail: one structured line per security event, never a secret."""

from __future__ import annotations

import logging

import pytest

from myapp.extensions import db
from tests.conftest import bearer, session_of, token_from
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.mfa import enrol

NEW_PASSWORD = "a brand new passphrase"


class TestAuditEvents:
    def test_login_when_successful_logs_user_request_and_ip(self, client, user, audit_log):
        response = client.post(
            "/api/v1/auth/login",
            json={"email": user.email, "password": DEFAULT_PASSWORD},
            headers={"X-Request-ID": "req-42"},
        )

        (entry,) = audit_log("login.succeeded")
        assert response.status_code == 200
        # These fields and no others: a log pipeline indexes them by name.
        assert set(entry) == {"time", "level", "logger", "message", "request_id"} | {
            "event",
            "user_id",
            "ip",
            "session_id",
        }
        assert (entry["user_id"], entry["request_id"], entry["ip"]) == (
            user.id,
            "req-42",
            "127.0.0.1",
        )
        assert entry["session_id"]

    @pytest.mark.parametrize(
        ("email", "password", "active", "reason", "known"),
        [
            ("nobody@example.com", DEFAULT_PASSWORD, True, "unknown_user", False),
            ("ada@example.com", "wrong password!", True, "wrong_password", True),
            # The answer is the same 401 for all three; only the trail tells them apart.
            ("ada@example.com", DEFAULT_PASSWORD, False, "inactive", True),
        ],
    )
    def test_login_when_failed_logs_reason_without_what_was_typed(
        self, client, user, audit_log, email, password, active, reason, known
    ):
        user.is_active = active
        db.session.commit()

        response = client.post("/api/v1/auth/login", json={"email": email, "password": password})

        (entry,) = audit_log("login.failed")
        assert response.status_code == 401
        assert entry["reason"] == reason
        assert entry["user_id"] == (user.id if known else None)
        assert email not in str(entry) and password not in str(entry)

    def test_session_events_when_they_happen_are_each_logged_with_their_session(
        self, client, auth, user, audit_log
    ):
        reused = auth.login(email=user.email).get_json()
        client.post("/api/v1/auth/refresh", headers=bearer(reused["refresh_token"]))
        client.post("/api/v1/auth/refresh", headers=bearer(reused["refresh_token"]))  # reuse
        logged_out = auth.login(email=user.email).get_json()
        client.post("/api/v1/auth/logout", headers=bearer(logged_out["access_token"]))
        current = auth.login(email=user.email).get_json()
        revoked = auth.login(email=user.email).get_json()
        client.delete(
            f"/api/v1/auth/sessions/{session_of(revoked['access_token'])}",
            headers=bearer(current["access_token"]),
        )
        client.post("/api/v1/auth/logout-all", headers=bearer(current["access_token"]))

        events = [e["event"] for e in audit_log() if e["user_id"] == user.id]
        assert events == [
            "login.succeeded",
            "refresh.reuse_detected",
            "login.succeeded",
            "logout",
            "login.succeeded",
            "login.succeeded",
            "session.revoked",
            "logout.all",
        ]
        # An operator following an incident needs which session, not only whose.
        for event, pair in (
            ("refresh.reuse_detected", reused),
            ("logout", logged_out),
            ("session.revoked", revoked),
        ):
            (entry,) = audit_log(event)
            assert entry["session_id"] == session_of(pair["access_token"])

    def test_password_events_when_they_happen_are_logged(
        self, client, auth, user, outbox, audit_log
    ):
        tokens = auth.login(email=user.email).get_json()
        client.put(
            "/api/v1/users/me/password",
            json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(tokens["access_token"]),
        )
        client.post("/api/v1/auth/password-reset", json={"email": user.email})
        client.post(
            "/api/v1/auth/password-reset/confirm",
            json={"token": token_from(outbox[-1]), "new_password": "another passphrase!"},
        )

        events = [(e["event"], e["user_id"]) for e in audit_log() if e["event"].startswith("pass")]
        assert events == [
            ("password.changed", user.id),
            # Logged as asked, before the worker looks the address up: no account yet.
            ("password.reset_requested", None),
            ("password.reset", user.id),
        ]

    def test_account_deletion_when_done_is_logged_with_the_gone_users_id(
        self, client, user, auth_headers, audit_log
    ):
        user_id = user.id

        client.delete("/api/v1/users/me", json={"password": DEFAULT_PASSWORD}, headers=auth_headers)

        assert [e["user_id"] for e in audit_log("account.deleted")] == [user_id]

    def test_admin_changes_when_made_log_actor_target_and_fields(
        self, client, admin_user, admin_headers, audit_log
    ):
        target = UserFactory()
        client.patch(f"/api/v1/users/{target.id}", json={"is_active": False}, headers=admin_headers)
        client.delete(f"/api/v1/users/{target.id}", headers=admin_headers)

        (updated,) = audit_log("admin.user_updated")
        (deleted,) = audit_log("admin.user_deleted")
        assert (updated["actor_id"], updated["user_id"], updated["fields"]) == (
            admin_user.id,
            target.id,
            ["is_active"],
        )
        assert (deleted["actor_id"], deleted["user_id"]) == (admin_user.id, target.id)


class TestAuditHoldsNoSecrets:
    def test_audit_lines_when_a_full_session_runs_contain_no_password_token_or_hash(
        self, client, auth, user, outbox, audit_log
    ):
        tokens = auth.login(email=user.email).get_json()
        refreshed = client.post(
            "/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])
        ).get_json()
        client.post("/api/v1/auth/password-reset", json={"email": user.email})
        reset_token = token_from(outbox[-1])
        client.post(
            "/api/v1/auth/password-reset/confirm",
            json={"token": reset_token, "new_password": NEW_PASSWORD},
        )
        db.session.refresh(user)

        text = "\n".join(str(entry) for entry in audit_log())
        secrets = [
            DEFAULT_PASSWORD,
            NEW_PASSWORD,
            user.password_hash,
            reset_token,
            tokens["access_token"],
            tokens["refresh_token"],
            refreshed["access_token"],
        ]
        assert audit_log()  # the run did log
        assert [s for s in secrets if s in text] == []


class TestMfaAuditEvents:
    """Every enrolment, removal, code failure, recovery-code use and admin reset
    leaves a line; none holds a code or a secret."""

    def test_enrolment_when_confirmed_logs_start_and_enabled(
        self, client, user, auth_headers, audit_log, clock
    ):
        enrol(client, auth_headers, clock)

        assert [e["user_id"] for e in audit_log("mfa.enrolment_started")] == [user.id]
        assert [e["user_id"] for e in audit_log("mfa.enabled")] == [user.id]

    def test_second_step_when_code_wrong_logs_the_failure_and_method(
        self, auth, user, audit_log, enrolled
    ):
        auth.login_mfa(auth.mfa_token_for(user), code=enrolled.authenticator.wrong_code())

        (entry,) = audit_log("mfa.failed")
        assert (entry["user_id"], entry["method"]) == (user.id, "totp")
        assert audit_log("login.mfa_required")[0]["user_id"] == user.id

    def test_second_step_when_recovery_code_used_logs_use_and_what_is_left(
        self, auth, user, audit_log, enrolled, caplog
    ):
        code = enrolled.recovery_codes[0]
        auth.login_mfa(auth.mfa_token_for(user), recovery_code=code)

        (entry,) = audit_log("mfa.recovery_code_used")
        assert (entry["user_id"], entry["left"]) == (user.id, 9)
        assert audit_log("login.succeeded")[-1]["mfa"] == "recovery_code"
        assert code not in caplog.text and code.replace("-", "") not in caplog.text

    def test_removal_when_by_the_user_logs_it(self, client, user, audit_log, enrolled):
        client.delete(
            "/api/v1/auth/mfa/totp",
            json={"code": enrolled.authenticator.code()},
            headers=enrolled.headers,
        )

        (entry,) = audit_log("mfa.disabled")
        assert (entry["user_id"], entry["method"]) == (user.id, "totp")

    def test_reset_when_by_an_admin_logs_the_admins_id(
        self, client, user, admin_user, admin_headers, audit_log, enrolled
    ):
        client.delete(f"/api/v1/users/{user.id}/mfa", headers=admin_headers)

        (entry,) = audit_log("mfa.admin_reset")
        assert (entry["user_id"], entry["actor_id"]) == (user.id, admin_user.id)

    def test_secret_when_enrolling_never_reaches_the_log(self, client, auth_headers, caplog):
        caplog.set_level(logging.DEBUG)
        secret = client.post("/api/v1/auth/mfa/totp/setup", headers=auth_headers).get_json()[
            "secret"
        ]

        assert secret not in caplog.text
