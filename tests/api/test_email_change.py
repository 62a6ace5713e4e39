"""A user's new email address takes effect only once a link sent there is opened:
POST /users/me/email/confirm with its token (no login needed)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from limits import parse

from myapp.auth.account import AccountService
from myapp.extensions import db
from myapp.users.models import User
from tests.conftest import token_from
from tests.factories import UserFactory

ME = "/api/v1/users/me"
CONFIRM = "/api/v1/users/me/email/confirm"


def reload(user_id: int) -> User:
    db.session.expire_all()
    return db.session.get(User, user_id)


def ask_for(client, headers, outbox, email: str) -> str:
    """Ask to move to ``email``; the token of the link sent there."""
    response = client.patch(ME, json={"email": email}, headers=headers)
    assert response.status_code == 202, response.get_json()
    return token_from(outbox[-1])


class TestConfirm:
    def test_confirm_when_link_opened_moves_the_account_and_tells_the_old_address(
        self, client, user, auth_headers, outbox, audit_log
    ):
        token = ask_for(client, auth_headers, outbox, "new@example.com")

        response = client.post(CONFIRM, json={"token": token})

        body = response.get_json()
        stored = reload(user.id)
        assert response.status_code == 200
        assert (body["email"], body["pending_email"], body["is_verified"]) == (
            "new@example.com",
            None,
            True,
        )
        assert (stored.email, stored.pending_email, stored.is_verified) == (
            "new@example.com",
            None,
            True,
        )
        notice = outbox[-1]
        assert (notice.to, notice.subject) == (
            "ada@example.com",
            "The email address of your account was changed",
        )
        assert "token=" not in notice.body
        # Every session ends, the one that asked included: whoever held one may be
        # the reason for the move.
        assert client.get(ME, headers=auth_headers).status_code == 401
        assert [e["user_id"] for e in audit_log("email.changed")] == [user.id]

    def test_confirm_when_token_reused_returns_400_and_changes_nothing_more(
        self, client, user, auth_headers, outbox
    ):
        token = ask_for(client, auth_headers, outbox, "new@example.com")
        client.post(CONFIRM, json={"token": token})

        again = client.post(CONFIRM, json={"token": token})

        assert again.status_code == 400
        assert again.mimetype == "application/problem+json"
        assert again.get_json()["detail"] == "The token is invalid, expired or already used."
        assert reload(user.id).email == "new@example.com"

    def test_confirm_when_a_later_request_replaced_it_returns_400(
        self, client, user, auth_headers, outbox
    ):
        first = ask_for(client, auth_headers, outbox, "first@example.com")
        second = ask_for(client, auth_headers, outbox, "second@example.com")

        stale = client.post(CONFIRM, json={"token": first})
        current = client.post(CONFIRM, json={"token": second})

        assert stale.status_code == 400
        assert current.status_code == 200
        assert reload(user.id).email == "second@example.com"

    def test_confirm_when_link_expired_returns_400_and_keeps_the_old_address(
        self, app, client, user, auth_headers, outbox
    ):
        lifetime = timedelta(seconds=app.config["EMAIL_CHANGE_TOKEN_EXPIRES"])
        with freeze_time() as clock:
            token = ask_for(client, auth_headers, outbox, "new@example.com")
            clock.tick(lifetime)

            response = client.post(CONFIRM, json={"token": token})

        assert response.status_code == 400
        assert (reload(user.id).email, reload(user.id).pending_email) == (
            "ada@example.com",
            "new@example.com",
        )

    def test_confirm_when_address_taken_meanwhile_returns_409_and_changes_nothing(
        self, client, user, auth_headers, outbox
    ):
        token = ask_for(client, auth_headers, outbox, "new@example.com")
        UserFactory(email="new@example.com")  # registered first, meanwhile

        response = client.post(CONFIRM, json={"token": token})

        stored = reload(user.id)
        assert response.status_code == 409
        assert (stored.email, stored.pending_email) == ("ada@example.com", "new@example.com")
        assert client.get(ME, headers=auth_headers).status_code == 200  # no session ended

    @pytest.mark.parametrize("body", [{}, {"token": ""}, {"token": 7}, {"token": "x", "y": 1}])
    def test_confirm_when_body_invalid_returns_422(self, client, body):
        response = client.post(CONFIRM, json=body)

        assert response.status_code == 422
        assert response.mimetype == "application/problem+json"


class TestConfirmLimit:
    def test_confirm_when_address_over_limit_returns_429_and_checks_nothing(
        self, app, client, user, auth_headers, outbox, mocker
    ):
        token = ask_for(client, auth_headers, outbox, "new@example.com")
        for _ in range(parse(app.config["RATELIMIT_EMAIL_CONFIRM"]).amount):
            client.post(CONFIRM, json={"token": "guess"})
        redeem = mocker.spy(AccountService, "redeem_email_change")

        response = client.post(CONFIRM, json={"token": token})

        assert response.status_code == 429
        assert response.mimetype == "application/problem+json"
        assert int(response.headers["Retry-After"]) > 0
        assert redeem.call_count == 0
        assert reload(user.id).email == "ada@example.com"


class TestRequest:
    def test_request_when_address_taken_returns_409_and_sends_nothing(
        self, client, user, auth_headers, outbox
    ):
        UserFactory(email="taken@example.com")

        response = client.patch(ME, json={"email": "taken@example.com"}, headers=auth_headers)

        assert response.status_code == 409
        assert reload(user.id).pending_email is None
        assert outbox == []

    def test_request_when_username_changes_too_applies_it_at_once(
        self, client, user, auth_headers, outbox
    ):
        response = client.patch(
            ME, json={"email": "new@example.com", "username": "lovelace"}, headers=auth_headers
        )

        assert response.status_code == 202
        assert (reload(user.id).username, reload(user.id).email) == ("lovelace", "ada@example.com")

    def test_request_when_address_is_the_current_one_changes_nothing(
        self, client, user, auth_headers, outbox
    ):
        response = client.patch(ME, json={"email": "ADA@example.com"}, headers=auth_headers)

        assert response.status_code == 200
        assert response.get_json()["pending_email"] is None
        assert outbox == []
