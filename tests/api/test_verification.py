"""Email verification: sent at registration, confirmed by token, resendable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from myapp.extensions import db
from myapp.outbox.models import OutboxMessage
from myapp.users.models import User
from tests.conftest import token_from

REGISTER = "/api/v1/auth/register"
VERIFY = "/api/v1/auth/verify-email"
RESEND = "/api/v1/auth/verify-email/resend"
NEW_USER = {"email": "new@example.com", "username": "newbie", "password": "a long password!"}


def is_verified(user_id: int) -> bool:
    db.session.expire_all()
    return db.session.get(User, user_id).is_verified


@pytest.fixture
def registered(client, outbox) -> tuple[int, str]:
    """A freshly registered user's id and the token of its verification email."""
    user_id = client.post(REGISTER, json=NEW_USER).get_json()["id"]
    (message,) = outbox
    outbox.clear()
    return user_id, token_from(message)


class TestVerificationEmail:
    def test_register_when_successful_sends_verification_link(self, app, client, outbox):
        client.post(REGISTER, json=NEW_USER)

        (message,) = outbox
        assert message.to == "new@example.com"
        assert f"{app.config['APP_BASE_URL']}/account/verify?token=" in message.body

    def test_register_when_delivery_fails_still_creates_account(self, client, mocker, caplog):
        mocker.patch("myapp.mail.MemoryBackend.send", side_effect=ConnectionError("down"))

        response = client.post(REGISTER, json=NEW_USER)

        (queued,) = db.session.scalars(select(OutboxMessage)).all()
        assert response.status_code == 201
        assert db.session.get(User, response.get_json()["id"]) is not None
        assert "not delivered (attempt 1): Could not send email: down" in caplog.text
        assert (queued.kind, queued.status) == ("email_verification", "pending")  # retried later


class TestVerifyEmail:
    def test_verify_when_token_valid_marks_user_verified(self, client, registered, audit_log):
        user_id, token = registered

        response = client.post(VERIFY, json={"token": token})

        assert response.status_code == 200
        assert response.get_json()["is_verified"] is True
        assert is_verified(user_id)
        assert [e["user_id"] for e in audit_log("email.verified")] == [user_id]

    def test_verify_when_token_reused_returns_400(self, client, registered):
        _, token = registered
        client.post(VERIFY, json={"token": token})

        response = client.post(VERIFY, json={"token": token})

        assert response.status_code == 400
        assert response.mimetype == "application/problem+json"

    def test_verify_when_token_expired_returns_400_and_stays_unverified(self, app, client, outbox):
        lifetime = timedelta(seconds=app.config["EMAIL_VERIFICATION_TOKEN_EXPIRES"])
        with freeze_time("2026-03-01 12:00:00") as clock:
            user_id = client.post(REGISTER, json=NEW_USER).get_json()["id"]
            clock.tick(lifetime + timedelta(seconds=1))

            response = client.post(VERIFY, json={"token": token_from(outbox[0])})

        assert response.status_code == 400
        assert not is_verified(user_id)

    def test_verify_when_given_reset_token_returns_400(self, client, registered, outbox):
        user_id, _ = registered
        client.post("/api/v1/auth/password-reset", json={"email": NEW_USER["email"]})

        response = client.post(VERIFY, json={"token": token_from(outbox[0])})

        assert response.status_code == 400
        assert not is_verified(user_id)

    def test_verify_when_email_changed_since_returns_400(self, client, registered):
        user_id, token = registered
        user = db.session.get(User, user_id)
        user.email = "changed@example.com"
        db.session.commit()

        response = client.post(VERIFY, json={"token": token})

        assert response.status_code == 400
        assert not is_verified(user_id)


class TestResendVerification:
    def test_resend_when_unverified_sends_new_working_link(self, client, auth, outbox, registered):
        headers = auth.headers_for(
            db.session.get(User, registered[0]), password=NEW_USER["password"]
        )

        response = client.post(RESEND, headers=headers)

        (message,) = outbox
        assert response.status_code == 202
        assert client.post(VERIFY, json={"token": token_from(message)}).status_code == 200

    def test_resend_when_already_verified_returns_409_and_sends_nothing(
        self, client, user, auth_headers, outbox
    ):
        user.is_verified = True
        db.session.commit()

        response = client.post(RESEND, headers=auth_headers)

        assert response.status_code == 409
        assert outbox == []

    def test_resend_when_no_token_returns_401(self, client, outbox):
        response = client.post(RESEND)

        assert response.status_code == 401
        assert outbox == []
