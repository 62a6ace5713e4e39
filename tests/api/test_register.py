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
    "is_mfa_enabled",
    "pending_email",
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


EMAIL_TAKEN = "An account with this email already exists."
USERNAME_TAKEN = "This username is taken."


class TestRegisterConflicts:
    @pytest.mark.parametrize(
        ("payload", "detail"),
        [
            ({**VALID, "username": "someone"}, EMAIL_TAKEN),
            ({**VALID, "email": "ADA@EXAMPLE.COM", "username": "someone"}, EMAIL_TAKEN),
            ({**VALID, "email": "other@example.com"}, USERNAME_TAKEN),
            ({**VALID, "email": "other@example.com", "username": "ADA"}, USERNAME_TAKEN),
        ],
        ids=["same-email", "email-other-case", "same-username", "username-other-case"],
    )
    def test_register_when_email_or_username_taken_returns_409_and_adds_nothing(
        self, client, payload, detail
    ):
        UserFactory(email="ada@example.com", username="ada")

        response = client.post(URL, json=payload)

        assert response.status_code == 409
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["title"] == "Conflict"
        # Which one is taken: the client can point at the right field.
        assert response.get_json()["detail"] == detail
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


class TestOneMailboxOneAccount:
    """A mailbox has one canonical form (email-validator's: the domain IDNA-decoded),
    and usernames are ASCII: no second account that is, or looks like, another."""

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            ("a@bücher.de", "a@xn--bcher-kva.de"),
            ("a@xn--bcher-kva.de", "A@BÜCHER.DE"),
        ],
        ids=["unicode-then-punycode", "punycode-then-upper-unicode"],
    )
    def test_register_when_same_mailbox_spelt_otherwise_returns_409(self, client, first, second):
        client.post(URL, json={**VALID, "email": first})

        response = client.post(URL, json={**VALID, "email": second, "username": "other"})

        assert response.status_code == 409
        assert response.get_json()["detail"] == EMAIL_TAKEN
        assert user_count() == 1

    def test_register_when_domain_in_punycode_stores_the_canonical_form(self, client):
        response = client.post(URL, json={**VALID, "email": "Ada@XN--BCHER-KVA.DE"})

        assert response.status_code == 201
        assert response.get_json()["email"] == "ada@bücher.de"

    def test_login_when_mailbox_typed_in_punycode_finds_the_account(self, client):
        client.post(URL, json={**VALID, "email": "ada@bücher.de"})

        response = client.post(
            "/api/v1/auth/login",
            json={"email": "ada@xn--bcher-kva.de", "password": VALID["password"]},
        )

        assert response.status_code == 200

    @pytest.mark.parametrize(
        "username",
        ["\u0430da", "ad\u0430", "\u212ada", "\uff41da"],
        ids=["cyrillic-a-first", "cyrillic-a-last", "kelvin-sign", "fullwidth-a"],
    )
    def test_register_when_username_not_ascii_returns_422_and_creates_nothing(
        self, client, username
    ):
        response = client.post(URL, json={**VALID, "username": username})

        assert response.status_code == 422
        assert "ASCII" in response.get_json()["errors"]["json"]["username"][0]
        assert user_count() == 0

    @pytest.mark.parametrize(
        "email", ["ada@localhost", "ada@example", "ada@b\u00e4d..de", "ada@exa mple.com"]
    )
    def test_register_when_email_not_an_address_returns_422(self, client, email):
        response = client.post(URL, json={**VALID, "email": email})

        assert response.status_code == 422
        assert response.get_json()["errors"]["json"]["email"] == ["Not a valid email address."]
        assert user_count() == 0
