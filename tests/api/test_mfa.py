"""Two-factor sign-in through the API: enrolment, the login's second step,
step-up, recovery codes, removal by the user and by an administrator, the
admin policy.

Time is frozen (``clock``): codes change every 30 s, and a code once accepted is
refused afterwards, so tests move the clock on between uses.
"""

from __future__ import annotations

import re

import pytest
from flask_jwt_extended import decode_token
from sqlalchemy import func, select

from myapp.auth.factors import RECOVERY_ALPHABET
from myapp.auth.models import MfaChallenge, RecoveryCode, TotpCredential
from myapp.extensions import db
from tests.conftest import bearer, fresh, live_sessions, mails, session_of
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.support.mfa import MFA, Authenticator, enrol
from tests.support.qr import ScannedQr, scan_svg

LOGIN = "/api/v1/auth/login"
REAUTH = "/api/v1/auth/reauthenticate"
ME = "/api/v1/users/me"
NEW_PASSWORD = "a brand new passphrase"
RECOVERY_CODE_SHAPE = re.compile(
    rf"\A[{RECOVERY_ALPHABET}]{{4}}(-[{RECOVERY_ALPHABET}]{{4}}){{2}}\Z"
)


def unused_recovery_codes(user) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )


class TestStatus:
    def test_status_when_off_says_so(self, client, auth_headers):
        response = client.get(MFA, headers=auth_headers)

        assert response.status_code == 200
        assert response.get_json() == {
            "totp": False,
            "passkeys": 0,
            "recovery_codes_left": 0,
            "methods": [],
        }

    def test_status_when_on_counts_codes_and_lists_methods(self, client, enrolled):
        response = client.get(MFA, headers=enrolled.headers)

        assert response.get_json() == {
            "totp": True,
            "passkeys": 0,
            "recovery_codes_left": 10,
            "methods": ["totp", "recovery_code"],
        }

    def test_user_representation_when_on_says_mfa_enabled(self, client, enrolled):
        assert client.get(ME, headers=enrolled.headers).get_json()["is_mfa_enabled"] is True


class TestEnrolment:
    def test_setup_when_fresh_returns_secret_uri_and_qr_and_changes_nothing_for_login(
        self, client, auth, user, auth_headers
    ):
        response = client.post(f"{MFA}/totp/setup", headers=auth_headers)

        body = response.get_json()
        assert response.status_code == 200
        assert re.fullmatch(r"[A-Z2-7]{32}", body["secret"])  # base32, 160 bits
        assert body["otpauth_uri"].startswith("otpauth://totp/myapp:ada%40example.com?")
        assert f"secret={body['secret']}" in body["otpauth_uri"]
        assert "issuer=myapp" in body["otpauth_uri"]
        # What a phone scans: the same URI, with room for a smudge (level M), drawn at
        # 4 px per module, the size the console shows it.
        assert scan_svg(body["qr_svg"]) == ScannedQr(body["otpauth_uri"], "M", 4)
        # Pending: the password alone still signs in.
        assert "access_token" in auth.login(email=user.email).get_json()
        assert fresh(user).is_mfa_enabled is False

    def test_setup_when_token_not_fresh_is_refused(self, client, auth, user):
        response = client.post(f"{MFA}/totp/setup", headers=auth.refreshed_headers_for(user))

        assert response.status_code == 401
        assert response.get_json()["detail"] == "A fresh token is required: log in again."
        assert db.session.get(TotpCredential, user.id) is None

    def test_confirm_when_code_right_turns_totp_on_and_returns_ten_codes_once(
        self, client, user, auth_headers, clock, outbox
    ):
        secret = client.post(f"{MFA}/totp/setup", headers=auth_headers).get_json()["secret"]

        response = client.post(
            f"{MFA}/totp/confirm",
            json={"code": Authenticator(secret).code()},
            headers=auth_headers,
        )

        codes = response.get_json()["recovery_codes"]
        assert response.status_code == 200
        assert len(codes) == len(set(codes)) == 10
        assert all(RECOVERY_CODE_SHAPE.match(code) for code in codes)
        assert fresh(user).is_mfa_enabled is True
        assert db.session.get(TotpCredential, user.id).confirmed_at is not None
        # Stored hashed: no row holds a code as shown or as typed.
        stored = set(db.session.scalars(select(RecoveryCode.code_hash)))
        assert stored.isdisjoint({*codes, *(c.replace("-", "") for c in codes)})
        assert [m.subject for m in outbox] == ["Two-factor sign-in was turned on"]

    def test_confirm_when_code_wrong_is_400_and_enrolment_stays_pending(
        self, client, user, auth_headers, clock, audit_log
    ):
        secret = client.post(f"{MFA}/totp/setup", headers=auth_headers).get_json()["secret"]
        app = Authenticator(secret)

        wrong = client.post(
            f"{MFA}/totp/confirm", json={"code": app.wrong_code()}, headers=auth_headers
        )

        assert wrong.status_code == 400
        assert "does not match" in wrong.get_json()["detail"]
        assert fresh(user).is_mfa_enabled is False
        (line,) = audit_log("mfa.failed")
        assert (line["user_id"], line["method"], line["enrolment"]) == (user.id, "totp", True)
        right = client.post(f"{MFA}/totp/confirm", json={"code": app.code()}, headers=auth_headers)
        assert right.status_code == 200

    def test_setup_when_repeated_replaces_the_pending_secret(self, client, auth_headers, clock):
        first = client.post(f"{MFA}/totp/setup", headers=auth_headers).get_json()["secret"]
        second = client.post(f"{MFA}/totp/setup", headers=auth_headers).get_json()["secret"]

        stale = client.post(
            f"{MFA}/totp/confirm", json={"code": Authenticator(first).code()}, headers=auth_headers
        )
        current = client.post(
            f"{MFA}/totp/confirm", json={"code": Authenticator(second).code()}, headers=auth_headers
        )

        assert first != second
        assert (stale.status_code, current.status_code) == (400, 200)

    def test_confirm_when_nothing_pending_is_409(self, client, auth_headers):
        response = client.post(f"{MFA}/totp/confirm", json={"code": "123456"}, headers=auth_headers)

        assert response.status_code == 409
        assert "setup" in response.get_json()["detail"]

    @pytest.mark.parametrize("endpoint", ["totp/setup", "totp/confirm"])
    def test_enrolment_when_already_on_is_409_and_keeps_the_factor(
        self, client, user, enrolled, endpoint
    ):
        response = client.post(
            f"{MFA}/{endpoint}",
            json={"code": enrolled.authenticator.code()} if endpoint == "totp/confirm" else None,
            headers=enrolled.headers,
        )

        assert response.status_code == 409
        assert "already on" in response.get_json()["detail"]
        assert fresh(user).is_mfa_enabled is True

    @pytest.mark.parametrize(
        ("steps", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)]
    )
    def test_confirm_when_code_of_a_nearby_step_accepts_one_step_either_side(
        self, client, auth_headers, clock, steps, accepted
    ):
        secret = client.post(f"{MFA}/totp/setup", headers=auth_headers).get_json()["secret"]

        response = client.post(
            f"{MFA}/totp/confirm",
            json={"code": Authenticator(secret).code(steps)},
            headers=auth_headers,
        )

        assert response.status_code == (200 if accepted else 400)

    @pytest.mark.parametrize("typed", ["123 456", " 123456 "])
    def test_confirm_when_code_typed_with_spaces_reads_the_digits(
        self, client, auth_headers, typed
    ):
        # Nothing pending: the 409 shows the code passed validation.
        response = client.post(f"{MFA}/totp/confirm", json={"code": typed}, headers=auth_headers)

        assert response.status_code == 409
        assert "No enrolment is pending" in response.get_json()["detail"]

    @pytest.mark.parametrize("code", ["12345", "1234567", "12a456", "１２３４５６", ""])
    def test_confirm_when_code_not_six_digits_is_422(self, client, auth_headers, code):
        response = client.post(f"{MFA}/totp/confirm", json={"code": code}, headers=auth_headers)

        assert response.status_code == 422
        assert "code" in response.get_json()["errors"]["json"]


class TestLoginWithMfa:
    def test_login_when_mfa_on_answers_the_second_step_without_tokens_or_session(
        self, auth, user, enrolled
    ):
        sessions_before = live_sessions(user)

        response = auth.login(email=user.email)

        body = response.get_json()
        assert response.status_code == 200
        assert body["mfa_required"] is True
        assert body["methods"] == ["totp", "recovery_code"]
        assert len(body["mfa_token"]) >= 43
        assert "access_token" not in body and "refresh_token" not in body
        assert live_sessions(user) == sessions_before

    def test_second_step_when_code_right_issues_fresh_tokens_and_a_session(
        self, client, auth, user, enrolled, app, audit_log
    ):
        token = auth.mfa_token_for(user)
        sessions_before = live_sessions(user)

        response = auth.login_mfa(token, code=enrolled.authenticator.code())

        body = response.get_json()
        assert response.status_code == 200
        assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert live_sessions(user) == sessions_before + 1
        line = audit_log("login.succeeded")[-1]
        assert (line["user_id"], line["session_id"], line["mfa"]) == (
            user.id,
            session_of(body["access_token"]),
            "totp",
        )
        me = client.get(ME, headers=bearer(body["access_token"]))
        assert me.get_json()["id"] == user.id
        # Fresh: it may change the password at once.
        change = client.put(
            f"{ME}/password",
            json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(body["access_token"]),
        )
        assert change.status_code == 204

    def test_second_step_when_code_wrong_is_401_and_counts_against_the_token(
        self, auth, user, enrolled
    ):
        token = auth.mfa_token_for(user)

        response = auth.login_mfa(token, code=enrolled.authenticator.wrong_code())

        assert response.status_code == 401
        assert response.get_json()["detail"] == "Invalid code."
        assert db.session.scalar(select(MfaChallenge.failed_attempts)) == 1

    def test_second_step_when_five_codes_were_wrong_refuses_even_the_right_one(
        self, auth, user, enrolled
    ):
        token = auth.mfa_token_for(user)
        for _ in range(5):
            assert (
                auth.login_mfa(token, code=enrolled.authenticator.wrong_code()).status_code == 401
            )

        response = auth.login_mfa(token, code=enrolled.authenticator.code())

        assert response.status_code == 401
        assert "mfa_token is invalid" in response.get_json()["detail"]
        assert live_sessions(user) == 1  # the enrolling session only

    def test_second_step_when_token_used_once_refuses_it_again(self, auth, user, enrolled, clock):
        token = auth.mfa_token_for(user)
        assert auth.login_mfa(token, code=enrolled.authenticator.code()).status_code == 200
        clock.tick(30)

        again = auth.login_mfa(token, code=enrolled.authenticator.code())

        assert again.status_code == 401
        assert "mfa_token is invalid" in again.get_json()["detail"]

    @pytest.mark.parametrize(("seconds", "status"), [(299, 200), (300, 401)])
    def test_second_step_when_token_older_than_its_lifetime_is_refused(
        self, auth, user, enrolled, clock, seconds, status
    ):
        token = auth.mfa_token_for(user)
        clock.tick(seconds)

        response = auth.login_mfa(token, code=enrolled.authenticator.code())

        assert response.status_code == status

    def test_second_step_when_password_changed_meanwhile_the_token_is_dead(
        self, client, auth, user, enrolled
    ):
        token = auth.mfa_token_for(user)
        client.put(
            f"{ME}/password",
            json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
            headers=enrolled.headers,
        )

        response = auth.login_mfa(token, code=enrolled.authenticator.code())

        assert response.status_code == 401
        assert "mfa_token is invalid" in response.get_json()["detail"]

    def test_second_step_when_signed_out_everywhere_twice_meanwhile_the_token_is_dead(
        self, client, auth, user, enrolled, clock
    ):
        client.post("/api/v1/auth/logout-all", headers=enrolled.headers)
        clock.tick(30)
        again = auth.login_mfa(auth.mfa_token_for(user), code=enrolled.authenticator.code())
        token = auth.mfa_token_for(user)

        # Every sign-out everywhere ends the second steps in progress, not just the first.
        signed_out = client.post(
            "/api/v1/auth/logout-all", headers=bearer(again.get_json()["access_token"])
        )
        clock.tick(30)
        response = auth.login_mfa(token, code=enrolled.authenticator.code())

        assert signed_out.status_code == 204
        assert response.status_code == 401
        assert "mfa_token is invalid" in response.get_json()["detail"]
        assert live_sessions(user) == 0

    def test_second_step_when_token_unknown_is_401(self, auth, enrolled):
        response = auth.login_mfa("not-a-token", code=enrolled.authenticator.code())

        assert response.status_code == 401

    def test_login_when_mfa_off_is_unchanged(self, auth, user):
        assert set(auth.login(email=user.email).get_json()) == {
            "access_token",
            "refresh_token",
            "token_type",
            "expires_in",
        }


class TestReplay:
    """A code accepted once is refused afterwards, on every endpoint."""

    def use_at_login(self, auth, user, code):
        return auth.login_mfa(auth.mfa_token_for(user), code=code)

    def use_at_reauth(self, client, enrolled, code):
        return client.post(
            REAUTH, json={"password": DEFAULT_PASSWORD, "code": code}, headers=enrolled.headers
        )

    def use_at_disable(self, client, enrolled, code):
        return client.delete(f"{MFA}/totp", json={"code": code}, headers=enrolled.headers)

    @pytest.mark.parametrize("first", ["login", "reauth"])
    @pytest.mark.parametrize("second", ["login", "reauth", "disable"])
    def test_code_when_used_once_is_refused_on_any_endpoint(
        self, client, auth, user, enrolled, first, second
    ):
        uses = {
            "login": lambda code: self.use_at_login(auth, user, code),
            "reauth": lambda code: self.use_at_reauth(client, enrolled, code),
            "disable": lambda code: self.use_at_disable(client, enrolled, code),
        }
        code = enrolled.authenticator.code()
        assert uses[first](code).status_code == 200

        replayed = uses[second](code)

        assert replayed.status_code in (401, 403)
        assert fresh(user).is_mfa_enabled is True

    def test_code_when_an_older_step_after_a_newer_one_is_refused(self, auth, user, enrolled):
        app = enrolled.authenticator
        assert self.use_at_login(auth, user, app.code(1)).status_code == 200

        assert self.use_at_login(auth, user, app.code(0)).status_code == 401

    def test_code_when_the_enrolment_code_is_replayed_at_login_is_refused(
        self, auth, user, auth_headers, client, clock
    ):
        secret = client.post(f"{MFA}/totp/setup", headers=auth_headers).get_json()["secret"]
        code = Authenticator(secret).code()
        client.post(f"{MFA}/totp/confirm", json={"code": code}, headers=auth_headers)

        assert self.use_at_login(auth, user, code).status_code == 401


class TestRecoveryCodes:
    def test_second_step_when_recovery_code_given_signs_in_uses_it_and_tells_the_owner(
        self, auth, user, enrolled, outbox
    ):
        response = auth.login_mfa(
            auth.mfa_token_for(user), recovery_code=enrolled.recovery_codes[0]
        )

        assert response.status_code == 200
        assert unused_recovery_codes(user) == 9
        (notice,) = mails("mfa_recovery_code_used")
        assert notice.recipient == user.email
        assert "9 unused codes are left" in notice.text_body

    def test_recovery_code_when_used_twice_is_refused_the_second_time(self, auth, user, enrolled):
        code = enrolled.recovery_codes[0]
        assert auth.login_mfa(auth.mfa_token_for(user), recovery_code=code).status_code == 200

        again = auth.login_mfa(auth.mfa_token_for(user), recovery_code=code)

        assert again.status_code == 401

    @pytest.mark.parametrize(
        "typed",
        [
            lambda code: code.lower(),
            lambda code: code.replace("-", ""),
            lambda code: code.replace("-", " "),
            lambda code: f"  {code.lower().replace('-', '')}  ",
        ],
        ids=["lower-case", "no-separators", "spaces", "padded"],
    )
    def test_recovery_code_when_typed_another_way_is_accepted(self, auth, user, enrolled, typed):
        response = auth.login_mfa(
            auth.mfa_token_for(user), recovery_code=typed(enrolled.recovery_codes[3])
        )

        assert response.status_code == 200

    def test_recovery_codes_when_all_used_none_is_left_and_the_status_says_so(
        self, client, auth, user, enrolled, app, monkeypatch
    ):
        # Ten successful uses are not wrong codes, yet keep the count out of the way.
        monkeypatch.setitem(app.config, "RATELIMIT_LOGIN", "100 per minute")
        for code in enrolled.recovery_codes:
            assert auth.login_mfa(auth.mfa_token_for(user), recovery_code=code).status_code == 200

        exhausted = auth.login_mfa(
            auth.mfa_token_for(user), recovery_code=enrolled.recovery_codes[-1]
        )

        assert exhausted.status_code == 401
        status = client.get(MFA, headers=enrolled.headers).get_json()
        assert status["recovery_codes_left"] == 0
        assert status["totp"] is True  # the app still works

    def test_regenerate_when_on_replaces_the_set(self, client, auth, user, enrolled, audit_log):
        response = client.post(f"{MFA}/recovery-codes", headers=enrolled.headers)

        new = response.get_json()["recovery_codes"]
        assert response.status_code == 200
        assert [e["user_id"] for e in audit_log("mfa.recovery_codes_regenerated")] == [user.id]
        assert len(new) == 10 and set(new).isdisjoint(enrolled.recovery_codes)
        old = auth.login_mfa(auth.mfa_token_for(user), recovery_code=enrolled.recovery_codes[0])
        assert old.status_code == 401
        assert auth.login_mfa(auth.mfa_token_for(user), recovery_code=new[0]).status_code == 200

    def test_regenerate_when_off_is_409_and_makes_no_codes(self, client, user, auth_headers):
        response = client.post(f"{MFA}/recovery-codes", headers=auth_headers)

        assert response.status_code == 409
        assert "off" in response.get_json()["detail"]
        assert unused_recovery_codes(user) == 0

    def test_regenerate_when_token_not_fresh_is_refused(self, client, auth, user, enrolled):
        stale = TestReauthenticate.refreshed(client, auth, user, enrolled)

        response = client.post(f"{MFA}/recovery-codes", headers=stale)

        assert response.status_code == 401
        assert unused_recovery_codes(user) == 9  # the set stays (one was used to sign in)


class TestReauthenticate:
    @staticmethod
    def refreshed(client, auth, user, enrolled=None) -> dict[str, str]:
        """Headers of a non-fresh access token (from a refresh) of ``user``."""
        if enrolled is None:
            tokens = auth.login(email=user.email).get_json()
        else:
            token = auth.mfa_token_for(user)
            tokens = auth.login_mfa(token, recovery_code=enrolled.recovery_codes[-1]).get_json()
        response = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
        return bearer(response.get_json()["access_token"])

    def test_reauthenticate_when_password_right_gives_a_fresh_token_of_the_same_session(
        self, client, auth, user, app, audit_log
    ):
        stale = self.refreshed(client, auth, user)
        sessions_before = live_sessions(user)

        response = client.post(REAUTH, json={"password": DEFAULT_PASSWORD}, headers=stale)

        body = response.get_json()
        assert response.status_code == 200
        assert set(body) == {"access_token", "token_type", "expires_in"}
        assert live_sessions(user) == sessions_before  # no new session
        claims = decode(app, body["access_token"])
        assert claims["fresh"] is True
        assert claims["sid"] == decode(app, stale["Authorization"][7:])["sid"]
        (line,) = audit_log("reauthenticated")
        assert (line["user_id"], line["session_id"]) == (user.id, claims["sid"])
        change = client.put(
            f"{ME}/password",
            json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(body["access_token"]),
        )
        assert change.status_code == 204

    def test_reauthenticate_when_password_wrong_is_403_without_a_token_and_audited(
        self, client, user, auth_headers, audit_log
    ):
        response = client.post(REAUTH, json={"password": "wrong password!"}, headers=auth_headers)

        body = response.get_json()
        assert response.status_code == 403
        assert body["detail"] == "The password is incorrect."
        assert "access_token" not in body
        (line,) = audit_log("reauthenticate.failed")
        assert (line["user_id"], line["reason"]) == (user.id, "wrong_password")
        assert audit_log("reauthenticated") == []

    def test_reauthenticate_when_mfa_on_and_no_code_is_403_naming_the_second_factor(
        self, client, enrolled
    ):
        response = client.post(
            REAUTH, json={"password": DEFAULT_PASSWORD}, headers=enrolled.headers
        )

        assert response.status_code == 403
        assert "code" in response.get_json()["detail"]

    @pytest.mark.parametrize(("right", "status"), [(True, 200), (False, 403)])
    def test_reauthenticate_when_mfa_on_checks_the_code(self, client, enrolled, right, status):
        app = enrolled.authenticator
        code = app.code() if right else app.wrong_code()

        response = client.post(
            REAUTH, json={"password": DEFAULT_PASSWORD, "code": code}, headers=enrolled.headers
        )

        assert response.status_code == status

    def test_reauthenticate_when_recovery_code_given_accepts_and_uses_it(
        self, client, user, enrolled
    ):
        response = client.post(
            REAUTH,
            json={"password": DEFAULT_PASSWORD, "recovery_code": enrolled.recovery_codes[0]},
            headers=enrolled.headers,
        )

        assert response.status_code == 200
        assert unused_recovery_codes(user) == 9

    def test_reauthenticate_when_password_checks_spent_is_429_shared_with_account_deletion(
        self, client, auth_headers, app, monkeypatch
    ):
        monkeypatch.setitem(app.config, "RATELIMIT_PASSWORD_CHECK", "2 per hour")
        client.delete(ME, json={"password": "wrong password!"}, headers=auth_headers)
        client.post(REAUTH, json={"password": "wrong password!"}, headers=auth_headers)

        response = client.post(REAUTH, json={"password": DEFAULT_PASSWORD}, headers=auth_headers)

        assert response.status_code == 429
        assert response.headers["Retry-After"]


class TestWrongCodeBudget:
    def test_wrong_codes_when_the_accounts_budget_is_spent_refuse_every_endpoint(
        self, client, auth, user, enrolled, app, monkeypatch, audit_log
    ):
        monkeypatch.setitem(app.config, "RATELIMIT_MFA_FAILURES", "3 per hour")
        wrong = enrolled.authenticator.wrong_code()
        assert auth.login_mfa(auth.mfa_token_for(user), code=wrong).status_code == 401
        reauth = {"password": DEFAULT_PASSWORD, "code": wrong}
        assert client.post(REAUTH, json=reauth, headers=enrolled.headers).status_code == 403
        disable = client.delete(f"{MFA}/totp", json={"code": wrong}, headers=enrolled.headers)
        assert disable.status_code == 403

        # Even the right code is not checked now: the account is being guessed at.
        response = auth.login_mfa(auth.mfa_token_for(user), code=enrolled.authenticator.code())

        assert response.status_code == 429
        assert response.headers["Retry-After"]
        assert "wrong codes" in response.get_json()["detail"]
        assert [e["user_id"] for e in audit_log("mfa.throttled")] == [user.id]

    def test_right_code_when_confirming_enrolment_does_not_spend_the_budget(
        self, auth, client, user, auth_headers, app, monkeypatch, clock
    ):
        monkeypatch.setitem(app.config, "RATELIMIT_MFA_FAILURES", "1 per hour")
        enrolment = enrol(client, auth_headers, clock)

        response = auth.login_mfa(auth.mfa_token_for(user), code=enrolment.authenticator.code())

        assert response.status_code == 200

    def test_right_codes_when_repeated_never_spend_the_budget(
        self, auth, user, enrolled, app, monkeypatch, clock
    ):
        monkeypatch.setitem(app.config, "RATELIMIT_MFA_FAILURES", "2 per hour")
        for _ in range(3):
            token = auth.mfa_token_for(user)
            assert auth.login_mfa(token, code=enrolled.authenticator.code()).status_code == 200
            clock.tick(30)


class TestDisable:
    def test_disable_when_code_right_removes_factors_ends_other_sessions_and_tells_owner(
        self, client, auth, user, enrolled, outbox
    ):
        other = auth.login_mfa(
            auth.mfa_token_for(user), recovery_code=enrolled.recovery_codes[0]
        ).get_json()

        response = client.delete(
            f"{MFA}/totp", json={"code": enrolled.authenticator.code()}, headers=enrolled.headers
        )

        assert response.status_code == 204
        assert fresh(user).is_mfa_enabled is False
        assert db.session.get(TotpCredential, user.id) is None
        assert unused_recovery_codes(user) == 0
        assert client.get(ME, headers=bearer(other["access_token"])).status_code == 401
        assert client.get(ME, headers=enrolled.headers).status_code == 200  # this one goes on
        assert "access_token" in auth.login(email=user.email).get_json()  # one step again
        assert [m.subject for m in mails("mfa_disabled")] == [
            "Two-factor sign-in with an app was turned off"
        ]

    def test_disable_when_recovery_code_given_accepts_it(self, client, user, enrolled):
        response = client.delete(
            f"{MFA}/totp",
            json={"recovery_code": enrolled.recovery_codes[0]},
            headers=enrolled.headers,
        )

        assert response.status_code == 204
        assert fresh(user).is_mfa_enabled is False

    def test_disable_when_code_wrong_is_403_and_changes_nothing(self, client, user, enrolled):
        response = client.delete(
            f"{MFA}/totp",
            json={"code": enrolled.authenticator.wrong_code()},
            headers=enrolled.headers,
        )

        assert response.status_code == 403
        assert fresh(user).is_mfa_enabled is True
        assert unused_recovery_codes(user) == 10
        assert mails("mfa_disabled") == []

    def test_disable_when_off_is_409_and_tells_no_one(self, client, auth_headers):
        response = client.delete(f"{MFA}/totp", json={"code": "123456"}, headers=auth_headers)

        assert response.status_code == 409
        assert response.get_json()["detail"] == "Two-factor sign-in with an app is already off."
        assert mails("mfa_disabled") == []

    @pytest.mark.parametrize(
        "body", [{}, {"code": "123456", "recovery_code": "AAAA-BBBB-CCCC"}], ids=["none", "both"]
    )
    def test_disable_when_not_exactly_one_factor_is_422(self, client, user, enrolled, body):
        response = client.delete(f"{MFA}/totp", json=body, headers=enrolled.headers)

        assert response.status_code == 422
        assert "exactly one" in str(response.get_json()["errors"])
        assert fresh(user).is_mfa_enabled is True


class TestAdminReset:
    URL = "/api/v1/users/{}/mfa"

    def test_reset_when_admin_removes_factors_ends_sessions_and_tells_the_user(
        self, client, user, enrolled, admin_headers, admin_user
    ):
        response = client.delete(self.URL.format(user.id), headers=admin_headers)

        assert response.status_code == 204
        assert fresh(user).is_mfa_enabled is False
        assert db.session.get(TotpCredential, user.id) is None
        assert unused_recovery_codes(user) == 0
        assert live_sessions(user) == 0
        assert client.get(ME, headers=enrolled.headers).status_code == 401
        (notice,) = mails("mfa_reset")
        assert notice.recipient == user.email

    def test_reset_when_user_signed_out_everywhere_before_moves_the_version_on(
        self, client, user, enrolled, admin_headers
    ):
        # Not reset to a fixed value: tokens of an earlier version must stay dead too.
        user.token_version = 4
        db.session.flush()

        response = client.delete(self.URL.format(user.id), headers=admin_headers)

        assert response.status_code == 204
        assert fresh(user).token_version == 5

    def test_reset_when_enrolment_only_started_removes_it(
        self, client, user, auth_headers, admin_headers
    ):
        assert client.post(f"{MFA}/totp/setup", headers=auth_headers).status_code == 200

        response = client.delete(self.URL.format(user.id), headers=admin_headers)

        assert response.status_code == 204
        assert db.session.get(TotpCredential, user.id) is None
        assert [m.recipient for m in mails("mfa_reset")] == [user.email]

    def test_reset_when_user_has_no_second_factor_is_409_and_ends_nothing(
        self, client, user, auth_headers, admin_headers
    ):
        response = client.delete(self.URL.format(user.id), headers=admin_headers)

        assert response.status_code == 409
        assert response.get_json()["detail"] == "This user has no second factor."
        assert client.get(ME, headers=auth_headers).status_code == 200  # sessions untouched
        assert mails("mfa_reset") == []

    def test_reset_when_user_unknown_is_404(self, client, admin_headers):
        response = client.delete(self.URL.format(987654), headers=admin_headers)

        assert response.status_code == 404
        assert response.get_json()["detail"] == "User not found."

    def test_reset_when_caller_not_admin_is_403_and_changes_nothing(self, client, user, enrolled):
        other = UserFactory(email="eve@example.com", username="eve")
        response = client.delete(self.URL.format(user.id), headers=enrolled.headers)

        assert response.status_code == 403
        assert fresh(user).is_mfa_enabled is True
        assert other.is_mfa_enabled is False

    def test_reset_when_admin_token_not_fresh_is_401(
        self, client, auth, user, enrolled, admin_user
    ):
        response = client.delete(
            self.URL.format(user.id), headers=auth.refreshed_headers_for(admin_user)
        )

        assert response.status_code == 401
        assert fresh(user).is_mfa_enabled is True


class TestAdminPolicy:
    def test_policy_when_on_refuses_an_admin_without_a_second_factor_saying_to_enrol(
        self, client, admin_headers, app, monkeypatch
    ):
        monkeypatch.setitem(app.config, "MFA_REQUIRED_FOR_ADMINS", True)

        response = client.get("/api/v1/users", headers=admin_headers)

        assert response.status_code == 403
        assert response.mimetype == "application/problem+json"
        assert "enrol" in response.get_json()["detail"]

    def test_policy_when_on_lets_an_admin_with_a_second_factor_in(
        self, client, admin_user, admin_headers, app, monkeypatch, clock
    ):
        enrol(client, admin_headers, clock)
        monkeypatch.setitem(app.config, "MFA_REQUIRED_FOR_ADMINS", True)

        response = client.get("/api/v1/users", headers=admin_headers)

        assert response.status_code == 200

    def test_policy_when_on_still_lets_the_admin_enrol(
        self, client, admin_headers, app, monkeypatch
    ):
        monkeypatch.setitem(app.config, "MFA_REQUIRED_FOR_ADMINS", True)

        assert client.post(f"{MFA}/totp/setup", headers=admin_headers).status_code == 200

    def test_policy_when_off_by_default_lets_an_admin_without_second_factor_in(
        self, client, admin_headers, app
    ):
        assert app.config["MFA_REQUIRED_FOR_ADMINS"] is False
        assert client.get("/api/v1/users", headers=admin_headers).status_code == 200


class TestAdminListFilter:
    @pytest.mark.parametrize(("mfa", "expected"), [("true", ["ada"]), ("false", ["grace"])])
    def test_list_when_filtered_by_mfa_returns_matching_users(
        self, client, enrolled, admin_headers, mfa, expected
    ):
        response = client.get(f"/api/v1/users?mfa={mfa}", headers=admin_headers)

        assert [u["username"] for u in response.get_json()] == expected
        assert all(u["is_mfa_enabled"] is (mfa == "true") for u in response.get_json())


def decode(app, token: str) -> dict:
    with app.test_request_context():
        return decode_token(token)


class TestChangeBudget:
    def test_new_secrets_and_code_sets_when_too_many_are_429_per_user(
        self, client, enrolled, app, monkeypatch, user
    ):
        monkeypatch.setitem(app.config, "RATELIMIT_MFA_CHANGES", "2 per hour")
        for _ in range(2):
            response = client.post(f"{MFA}/recovery-codes", headers=enrolled.headers)
            assert response.status_code == 200
        codes_before = unused_recovery_codes(user)

        response = client.post(f"{MFA}/recovery-codes", headers=enrolled.headers)

        assert response.status_code == 429
        assert response.headers["Retry-After"]
        assert "recovery codes" in response.get_json()["detail"]
        assert unused_recovery_codes(user) == codes_before  # the set in use stays
