"""POST /api/v1/auth/register"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from myapp.extensions import db
from myapp.users.models import User
from tests.factories import UserFactory

URL = "/api/v1/auth/register"
VALID = {"email": "ada@example.com", "username": "ada", "password": "a long password!"}
USER_KEYS = {
    "id",
    "email",
    "username",
    "is_active",
    "is_admin",
    "is_verified",
    "created_at",
    "updated_at",
}


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


class TestRegisterSuccess:
    def test_register_when_valid_returns_201_with_user_and_location(self, client):
        response = client.post(URL, json=VALID)

        body = response.get_json()
        assert response.status_code == 201
        assert set(body) == USER_KEYS
        assert body["email"] == "ada@example.com"
        assert body["username"] == "ada"
        assert (body["is_active"], body["is_admin"], body["is_verified"]) == (True, False, False)
        assert response.headers["Location"] == f"/api/v1/users/{body['id']}"

    def test_register_when_valid_stores_normalised_user_with_argon2id_hash(self, client):
        client.post(URL, json={**VALID, "email": "  Ada@Example.COM ", "username": "Ada"})

        user = db.session.scalar(select(User))
        assert (user.email, user.username) == ("ada@example.com", "ada")
        assert user.password_hash.startswith("$argon2id$")
        assert VALID["password"] not in user.password_hash

    def test_register_when_valid_never_returns_password_or_hash(self, client):
        response = client.post(URL, json=VALID)

        text = response.get_data(as_text=True)
        assert "password" not in text
        assert "$argon2" not in text

    def test_register_when_password_is_any_unicode_accepts_it(self, client):
        response = client.post(URL, json={**VALID, "password": "пароль🔐密码 ça va"})

        assert response.status_code == 201
        assert user_count() == 1


class TestRegisterConflicts:
    @pytest.mark.parametrize(
        "payload",
        [
            {**VALID, "username": "someone"},
            {**VALID, "email": "ADA@EXAMPLE.COM", "username": "someone"},
            {**VALID, "email": "other@example.com"},
            {**VALID, "email": "other@example.com", "username": "ADA"},
        ],
        ids=["same-email", "email-other-case", "same-username", "username-other-case"],
    )
    def test_register_when_email_or_username_taken_returns_409_and_adds_nothing(
        self, client, payload
    ):
        UserFactory(email="ada@example.com", username="ada")

        response = client.post(URL, json=payload)

        assert response.status_code == 409
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["title"] == "Conflict"
        assert user_count() == 1


class TestRegisterValidation:
    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({k: v for k, v in VALID.items() if k != "email"}, "email"),
            ({k: v for k, v in VALID.items() if k != "username"}, "username"),
            ({k: v for k, v in VALID.items() if k != "password"}, "password"),
            ({**VALID, "email": "not-an-email"}, "email"),
            ({**VALID, "email": "a" * 250 + "@example.com"}, "email"),
            ({**VALID, "email": 42}, "email"),
            ({**VALID, "username": "ab"}, "username"),
            ({**VALID, "username": "a" * 51}, "username"),
            ({**VALID, "username": "has space"}, "username"),
            ({**VALID, "username": "ada\nbob"}, "username"),
            ({**VALID, "username": "nul\u0000byte"}, "username"),
            ({**VALID, "password": "short"}, "password"),
            ({**VALID, "password": "p" * 129}, "password"),
            ({**VALID, "password": "p" * 1_000_000}, "password"),
            ({**VALID, "password": None}, "password"),
            ({**VALID, "is_admin": True}, "is_admin"),
        ],
        ids=[
            "no-email",
            "no-username",
            "no-password",
            "bad-email",
            "long-email",
            "email-int",
            "short-username",
            "long-username",
            "space-username",
            "newline-username",
            "nul-username",
            "short-password",
            "long-password",
            "huge-password",
            "null-password",
            "unknown-field",
        ],
    )
    def test_register_when_field_invalid_returns_422_naming_field_and_adds_nothing(
        self, client, payload, field
    ):
        response = client.post(URL, json=payload)

        body = response.get_json()
        assert response.status_code == 422
        assert response.mimetype == "application/problem+json"
        assert body["status"] == 422
        assert field in body["errors"]["json"]
        assert user_count() == 0

    @pytest.mark.parametrize("password", ["LeaveMeAlone", "qazwsxedcrfv", "password1234"])
    def test_register_when_password_common_returns_422_saying_why(self, client, password):
        response = client.post(URL, json={**VALID, "password": password})

        assert response.status_code == 422
        assert "most commonly used" in response.get_json()["errors"]["json"]["password"][0]
        assert user_count() == 0

    def test_register_when_password_huge_rejects_before_hashing(self, client, mocker):
        from myapp.extensions import passwords

        hash_spy = mocker.spy(passwords, "hash")

        response = client.post(URL, json={**VALID, "password": "p" * 1_000_000})

        assert response.status_code == 422
        hash_spy.assert_not_called()
