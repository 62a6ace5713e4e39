"""PATCH /users/me and DELETE /users/me: self-service profile and account deletion."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from myapp.auth.models import AuthSession
from myapp.extensions import db
from myapp.users.models import User
from tests.factories import DEFAULT_PASSWORD, UserFactory

ME = "/api/v1/users/me"


def reload(user) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


@pytest.fixture
def refreshed_headers(auth, user) -> dict[str, str]:
    return auth.refreshed_headers_for(user)


class TestUpdateProfile:
    def test_update_when_username_changed_returns_user_and_stores_it(
        self, client, user, auth_headers
    ):
        response = client.patch(ME, json={"username": "Lovelace"}, headers=auth_headers)

        assert response.status_code == 200
        assert response.get_json()["username"] == "lovelace"
        assert reload(user).username == "lovelace"

    def test_update_when_email_changed_answers_202_pending_and_mails_the_new_address(
        self, client, user, auth_headers, outbox
    ):
        user.is_verified = True
        db.session.commit()

        response = client.patch(ME, json={"email": "New@Example.com"}, headers=auth_headers)

        body = response.get_json()
        assert response.status_code == 202
        assert (body["email"], body["pending_email"], body["is_verified"]) == (
            "ada@example.com",
            "new@example.com",
            True,
        )
        assert (reload(user).email, reload(user).pending_email) == (
            "ada@example.com",
            "new@example.com",
        )
        (link,) = outbox  # only the new address hears of it, until it is proven
        assert (link.to, link.subject) == ("new@example.com", "Confirm your new email address")
        assert "/account/confirm-email?token=" in link.body

    def test_update_when_email_change_with_refreshed_token_returns_401(
        self, client, user, refreshed_headers, outbox
    ):
        response = client.patch(ME, json={"email": "new@example.com"}, headers=refreshed_headers)

        assert response.status_code == 401
        assert "fresh" in response.get_json()["detail"]
        assert reload(user).email == "ada@example.com"
        assert outbox == []

    def test_update_when_username_change_with_refreshed_token_is_allowed(
        self, client, user, refreshed_headers
    ):
        response = client.patch(ME, json={"username": "lovelace"}, headers=refreshed_headers)

        assert response.status_code == 200
        assert response.get_json()["username"] == reload(user).username == "lovelace"

    @pytest.mark.parametrize(
        ("payload", "detail"),
        [
            ({"email": "TAKEN@example.com"}, "An account with this email already exists."),
            ({"username": "Taken"}, "This username is taken."),
        ],
        ids=["email-any-case", "username-any-case"],
    )
    def test_update_when_value_taken_returns_409_and_changes_nothing(
        self, client, user, auth_headers, payload, detail
    ):
        UserFactory(email="taken@example.com", username="taken")

        response = client.patch(ME, json=payload, headers=auth_headers)

        assert response.status_code == 409
        assert response.get_json()["detail"] == detail
        assert (reload(user).email, reload(user).username) == ("ada@example.com", "ada")

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"is_admin": True}, "is_admin"),
            ({"is_active": False}, "is_active"),
            ({"is_verified": True}, "is_verified"),
            ({"password_hash": "x"}, "password_hash"),
            ({"id": 99}, "id"),
            ({"token_version": 9}, "token_version"),
            ({"username": "ok_name", "is_admin": True}, "is_admin"),
            ({"email": "not-an-email"}, "email"),
            ({"username": "a"}, "username"),
            ({}, "_schema"),
        ],
        ids=[
            "is_admin",
            "is_active",
            "is_verified",
            "password_hash",
            "id",
            "token_version",
            "valid-plus-forbidden",
            "bad-email",
            "bad-username",
            "empty",
        ],
    )
    def test_update_when_field_not_allowed_or_invalid_returns_422_and_changes_nothing(
        self, client, user, auth_headers, payload, field
    ):
        response = client.patch(ME, json=payload, headers=auth_headers)

        stored = reload(user)
        assert response.status_code == 422
        assert field in response.get_json()["errors"]["json"]
        assert (stored.username, stored.is_admin, stored.is_active) == ("ada", False, True)


class TestDeleteAccount:
    def test_delete_when_password_correct_removes_account_and_sessions(self, client, auth, user):
        tokens = auth.login(email=user.email).get_json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}

        response = client.delete(ME, json={"password": DEFAULT_PASSWORD}, headers=headers)

        assert response.status_code == 204
        assert db.session.get(User, user.id) is None
        assert db.session.scalar(select(func.count()).select_from(AuthSession)) == 0
        assert client.get(ME, headers=headers).status_code == 401
        assert auth.login(email="ada@example.com").status_code == 401

    def test_delete_when_password_wrong_returns_403_and_keeps_account(
        self, client, user, auth_headers
    ):
        response = client.delete(ME, json={"password": "not my password"}, headers=auth_headers)

        assert response.status_code == 403
        assert response.get_json()["detail"] == "The password is incorrect."
        assert db.session.get(User, user.id) is not None

    @pytest.mark.parametrize("payload", [{}, {"password": ""}, {"password": 1}])
    def test_delete_when_body_invalid_returns_422_and_keeps_account(
        self, client, user, auth_headers, payload
    ):
        response = client.delete(ME, json=payload, headers=auth_headers)

        assert response.status_code == 422
        assert db.session.get(User, user.id) is not None
