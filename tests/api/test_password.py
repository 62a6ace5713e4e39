"""PUT /users/me/password, POST /auth/password-reset and /password-reset/confirm."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from myapp.auth.models import ActionToken, AuthSession
from myapp.database.columns import utcnow
from myapp.extensions import db, passwords
from myapp.mail import MemoryBackend
from myapp.outbox.models import OutboxMessage
from tests.conftest import bearer, fresh, token_from
from tests.factories import DEFAULT_PASSWORD, UserFactory

CHANGE = "/api/v1/users/me/password"
RESET = "/api/v1/auth/password-reset"
CONFIRM = "/api/v1/auth/password-reset/confirm"
ME = "/api/v1/users/me"
NEW_PASSWORD = "a brand new passphrase"


def stored_hash(user) -> str:
    db.session.expire_all()
    return db.session.get(type(user), user.id).password_hash


class TestChangePassword:
    def test_change_when_fresh_and_current_correct_sets_password(self, client, auth, user):
        tokens = auth.login(email=user.email).get_json()

        response = client.put(
            CHANGE,
            json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(tokens["access_token"]),
        )

        assert response.status_code == 204
        assert passwords.verify(stored_hash(user), NEW_PASSWORD)
        assert auth.login(email=user.email, password=NEW_PASSWORD).status_code == 200
        assert auth.login(email=user.email).status_code == 401

    def test_change_when_successful_revokes_other_sessions_only(self, client, auth, user):
        other = auth.login(email=user.email).get_json()
        current = auth.login(email=user.email).get_json()

        client.put(
            CHANGE,
            json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(current["access_token"]),
        )

        assert client.get(ME, headers=bearer(other["access_token"])).status_code == 401
        assert client.get(ME, headers=bearer(current["access_token"])).status_code == 200

    def test_change_when_token_not_fresh_returns_401_and_keeps_hash(self, client, auth, user):
        tokens = auth.login(email=user.email).get_json()
        refreshed = client.post(
            "/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])
        ).get_json()
        before = stored_hash(user)

        response = client.put(
            CHANGE,
            json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(refreshed["access_token"]),
        )

        assert response.status_code == 401
        assert "fresh" in response.get_json()["detail"]
        assert stored_hash(user) == before

    def test_change_when_current_password_wrong_returns_403_and_keeps_hash(
        self, client, user, auth_headers
    ):
        before = stored_hash(user)

        response = client.put(
            CHANGE,
            json={"current_password": "not my password", "new_password": NEW_PASSWORD},
            headers=auth_headers,
        )

        assert response.status_code == 403
        assert response.get_json()["detail"] == "The current password is incorrect."
        assert stored_hash(user) == before

    @pytest.mark.parametrize(
        ("new_password", "reason"),
        [
            ("elevenchars", "Length must be between 12 and 128 characters."),
            ("x" * 129, "Length must be between 12 and 128 characters."),
            (
                "LeaveMeAlone",
                "This password is one of the most commonly used passwords; choose another.",
            ),
            (
                "qazwsxedcrfv",
                "This password is one of the most commonly used passwords; choose another.",
            ),
        ],
        ids=["one-too-short", "one-too-long", "common-any-case", "common"],
    )
    def test_change_when_new_password_weak_returns_422_saying_why(
        self, client, user, auth_headers, new_password, reason
    ):
        before = stored_hash(user)

        response = client.put(
            CHANGE,
            json={"current_password": DEFAULT_PASSWORD, "new_password": new_password},
            headers=auth_headers,
        )

        assert response.status_code == 422
        assert response.get_json()["errors"]["json"]["new_password"] == [reason]
        assert stored_hash(user) == before

    @pytest.mark.parametrize("length", [12, 128], ids=["shortest", "longest"])
    def test_change_when_new_password_at_a_length_bound_sets_it(
        self, client, user, auth_headers, length
    ):
        new_password = ("a long passphrase " * 8)[:length]

        response = client.put(
            CHANGE,
            json={"current_password": DEFAULT_PASSWORD, "new_password": new_password},
            headers=auth_headers,
        )

        assert response.status_code == 204
        assert passwords.verify(stored_hash(user), new_password)

    def test_change_when_login_follows_in_same_second_new_token_works(self, client, auth, user):
        with freeze_time("2026-03-01 12:00:00"):
            tokens = auth.login(email=user.email).get_json()
            client.put(
                CHANGE,
                json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
                headers=bearer(tokens["access_token"]),
            )

            fresh = auth.login(email=user.email, password=NEW_PASSWORD).get_json()
            response = client.get(ME, headers=bearer(fresh["access_token"]))

        assert response.status_code == 200


class TestRequestPasswordReset:
    def test_request_when_account_exists_sends_link_and_stores_only_hash(
        self, app, client, user, outbox
    ):
        response = client.post(RESET, json={"email": "ADA@example.com"})

        (message,) = outbox
        token = token_from(message)
        (row,) = db.session.scalars(select(ActionToken).where(ActionToken.user_id == user.id))
        assert response.status_code == 202
        assert message.to == user.email
        assert message.body.count(f"{app.config['APP_BASE_URL']}/account/reset?token=") == 1
        assert token not in (row.token_hash, row.binding)
        # Issued now, and alive for exactly its lifetime from that instant.
        lifetime = timedelta(seconds=app.config["PASSWORD_RESET_TOKEN_EXPIRES"])
        assert row.expires_at - row.created_at == lifetime
        assert timedelta(0) <= utcnow() - row.created_at < timedelta(seconds=5)

    def test_request_when_account_unknown_answers_identically_and_sends_nothing(
        self, client, user, outbox
    ):
        known = client.post(RESET, json={"email": user.email})
        outbox.clear()

        unknown = client.post(RESET, json={"email": "nobody@example.com"})

        assert (unknown.status_code, unknown.get_json()) == (known.status_code, known.get_json())
        assert outbox == []
        assert len(db.session.scalars(select(ActionToken)).all()) == 1  # the known one

    def test_request_when_account_inactive_sends_nothing(self, client, outbox):
        inactive = UserFactory(is_active=False)

        response = client.post(RESET, json={"email": inactive.email})

        assert response.status_code == 202
        assert outbox == []

    def test_request_when_host_header_forged_link_uses_configured_base_url(
        self, app, client, user, outbox
    ):
        client.post(
            RESET,
            json={"email": user.email},
            headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
        )

        (message,) = outbox
        assert "evil.example" not in message.body
        assert f"{app.config['APP_BASE_URL']}/account/reset?token=" in message.body

    def test_request_when_delivery_fails_still_answers_202_logs_and_keeps_it_for_a_retry(
        self, client, user, mocker, caplog
    ):
        mocker.patch.object(MemoryBackend, "send", side_effect=ConnectionError("smtp down"))

        response = client.post(RESET, json={"email": user.email})

        (queued,) = db.session.scalars(select(OutboxMessage)).all()
        assert response.status_code == 202
        assert "not delivered (attempt 1): Could not send email: smtp down" in caplog.text
        assert (queued.kind, queued.status, queued.attempts) == ("password_reset", "pending", 1)

    @pytest.mark.parametrize(
        "payload", [{}, {"email": ""}, {"email": 3}, {"email": "a@b.c", "extra": 1}]
    )
    def test_request_when_body_invalid_returns_422(self, client, outbox, payload):
        response = client.post(RESET, json=payload)

        assert response.status_code == 422
        assert outbox == []


@pytest.fixture
def reset_token(client, user, outbox) -> str:
    client.post(RESET, json={"email": user.email})
    token = token_from(outbox[-1])
    outbox.clear()
    return token


class TestConfirmPasswordReset:
    def test_confirm_when_token_valid_sets_password_and_revokes_every_session(
        self, client, auth, user, reset_token
    ):
        tokens = auth.login(email=user.email).get_json()

        response = client.post(CONFIRM, json={"token": reset_token, "new_password": NEW_PASSWORD})

        assert response.status_code == 204
        assert response.get_data() == b""  # no automatic login
        assert passwords.verify(stored_hash(user), NEW_PASSWORD)
        assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 401
        assert (
            client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code
            == 401
        )
        live = db.session.scalars(select(AuthSession).where(AuthSession.revoked_at.is_(None)))
        assert live.all() == []

    def test_confirm_when_signed_out_everywhere_before_still_ends_every_token(
        self, client, auth, user, reset_token
    ):
        # From token version 1, not 0: a reset must move the version on, not set it.
        user.token_version = 1
        db.session.commit()
        tokens = auth.login(email=user.email).get_json()

        client.post(CONFIRM, json={"token": reset_token, "new_password": NEW_PASSWORD})

        assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 401
        assert fresh(user).token_version == 2

    def test_confirm_when_token_used_twice_second_returns_400(self, client, user, reset_token):
        client.post(CONFIRM, json={"token": reset_token, "new_password": NEW_PASSWORD})
        after_first = stored_hash(user)

        response = client.post(
            CONFIRM, json={"token": reset_token, "new_password": "yet another passphrase"}
        )

        assert response.status_code == 400
        assert response.mimetype == "application/problem+json"
        assert stored_hash(user) == after_first

    def test_confirm_when_token_expired_returns_400(self, app, client, user, outbox):
        lifetime = timedelta(seconds=app.config["PASSWORD_RESET_TOKEN_EXPIRES"])
        with freeze_time("2026-03-01 12:00:00") as clock:
            client.post(RESET, json={"email": user.email})
            clock.tick(lifetime + timedelta(seconds=1))

            response = client.post(
                CONFIRM, json={"token": token_from(outbox[0]), "new_password": NEW_PASSWORD}
            )

        assert response.status_code == 400

    def test_confirm_when_token_just_before_expiry_works(self, app, client, user, outbox):
        lifetime = timedelta(seconds=app.config["PASSWORD_RESET_TOKEN_EXPIRES"])
        with freeze_time("2026-03-01 12:00:00") as clock:
            client.post(RESET, json={"email": user.email})
            clock.tick(lifetime - timedelta(seconds=1))

            response = client.post(
                CONFIRM, json={"token": token_from(outbox[0]), "new_password": NEW_PASSWORD}
            )

        assert response.status_code == 204

    def test_confirm_when_password_changed_since_request_returns_400(
        self, client, auth, user, reset_token
    ):
        tokens = auth.login(email=user.email).get_json()
        client.put(
            CHANGE,
            json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(tokens["access_token"]),
        )

        response = client.post(
            CONFIRM, json={"token": reset_token, "new_password": "yet another passphrase"}
        )

        assert response.status_code == 400
        assert passwords.verify(stored_hash(user), NEW_PASSWORD)

    @pytest.mark.parametrize(
        ("token", "status"),
        [("garbage", 400), ("x" * 256, 400), ("x" * 257, 422), ("a\u0000b", 422), ("", 422)],
        ids=["unknown", "unknown-longest", "too-long", "nul", "empty"],
    )
    def test_confirm_when_token_not_issued_returns_4xx_and_changes_nothing(
        self, client, user, token, status
    ):
        before = stored_hash(user)

        response = client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})

        assert response.status_code == status
        assert response.mimetype == "application/problem+json"
        assert stored_hash(user) == before

    def test_confirm_when_new_password_weak_returns_422_and_token_stays_usable(
        self, client, user, reset_token
    ):
        weak = client.post(CONFIRM, json={"token": reset_token, "new_password": "password1234"})

        strong = client.post(CONFIRM, json={"token": reset_token, "new_password": NEW_PASSWORD})

        assert weak.status_code == 422
        assert "new_password" in weak.get_json()["errors"]["json"]
        assert strong.status_code == 204
