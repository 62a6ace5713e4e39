"""The admin API: GET/PATCH/DELETE /users/<id> and GET /users with pagination."""

from __future__ import annotations

import json

import pytest
from freezegun import freeze_time

from myapp.extensions import db
from myapp.users.models import User
from tests.conftest import live_sessions
from tests.factories import UserFactory

USERS = "/api/v1/users"


def reload(user_id: int) -> User | None:
    db.session.expire_all()
    return db.session.get(User, user_id)


def pagination(response) -> dict:
    return json.loads(response.headers["X-Pagination"])


@pytest.fixture
def population(admin_user):
    """Five users besides the admin, created a minute apart."""
    with freeze_time("2026-01-01") as clock:
        for name in ("carol", "bob", "dave", "erin", "frank"):
            clock.tick(60)
            UserFactory(email=f"{name}@example.org", username=name)
    return 6


class TestListUsers:
    def test_list_when_admin_returns_first_page_and_pagination_header(
        self, client, admin_headers, population
    ):
        response = client.get(USERS, query_string={"per_page": 2}, headers=admin_headers)

        assert response.status_code == 200
        assert len(response.get_json()) == 2
        assert pagination(response) == {
            "total": population,
            "total_pages": 3,
            "page": 1,
            "per_page": 2,
            "first_page": 1,
            "last_page": 3,
            "next_page": 2,
        }

    def test_list_when_pages_walked_returns_every_user_once(
        self, client, admin_headers, population
    ):
        seen, links = [], []
        for page in (1, 2, 3):
            response = client.get(
                USERS, query_string={"per_page": 2, "page": page}, headers=admin_headers
            )
            seen += [item["id"] for item in response.get_json()]
            meta = pagination(response)
            links.append((meta.get("previous_page"), meta.get("next_page")))

        assert len(seen) == len(set(seen)) == population
        assert links == [(None, 2), (1, 3), (2, None)]

    def test_list_when_per_page_omitted_defaults_to_20(self, client, admin_headers, population):
        response = client.get(USERS, headers=admin_headers)

        assert pagination(response)["per_page"] == 20

    @pytest.mark.parametrize(
        ("sort", "expected"),
        [
            ("username", ["bob", "carol", "dave"]),
            ("-username", ["grace", "frank", "erin"]),
            ("email", ["bob", "carol", "dave"]),
            ("-created_at", ["grace", "frank", "erin"]),
        ],
    )
    def test_list_when_sorted_orders_users(self, client, admin_headers, population, sort, expected):
        response = client.get(
            USERS, query_string={"sort": sort, "per_page": 3}, headers=admin_headers
        )

        assert [item["username"] for item in response.get_json()] == expected

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"q": "AR"}, {"carol"}),
            ({"q": "example.org", "per_page": 100}, {"carol", "bob", "dave", "erin", "frank"}),
            ({"is_admin": "true"}, {"grace"}),
            ({"is_active": "false"}, {"erin"}),
            ({"is_verified": "true"}, {"dave"}),
        ],
        ids=["q", "q-domain", "is_admin", "is_active", "is_verified"],
    )
    def test_list_when_filtered_returns_matches_and_their_total(
        self, client, admin_headers, population, query, expected
    ):
        db.session.scalar(db.select(User).where(User.username == "erin")).is_active = False
        db.session.scalar(db.select(User).where(User.username == "dave")).is_verified = True
        db.session.commit()

        response = client.get(USERS, query_string=query, headers=admin_headers)

        assert {item["username"] for item in response.get_json()} == expected
        assert pagination(response)["total"] == len(expected)

    def test_list_when_page_past_end_returns_empty_list(self, client, admin_headers, population):
        response = client.get(USERS, query_string={"page": 50}, headers=admin_headers)

        assert response.status_code == 200
        assert response.get_json() == []
        assert pagination(response)["total"] == population

    @pytest.mark.parametrize(
        "query",
        [
            {"page": 0},
            {"page": -1},
            {"page": "x"},
            {"page": "1e3"},
            {"per_page": 0},
            {"per_page": 101},
            {"per_page": "many"},
            {"sort": "password_hash"},
            {"sort": "id; drop table users"},
            {"is_active": "maybe"},
            {"q": ""},
            {"q": "a" * 255},
            {"unknown": "1"},
        ],
        ids=[
            "page-0",
            "page-negative",
            "page-text",
            "page-float",
            "per-page-0",
            "per-page-101",
            "per-page-text",
            "sort-hash",
            "sort-injection",
            "bool-invalid",
            "q-empty",
            "q-too-long",
            "unknown-param",
        ],
    )
    def test_list_when_query_invalid_returns_422(self, client, admin_headers, query):
        response = client.get(USERS, query_string=query, headers=admin_headers)

        assert response.status_code == 422
        assert response.mimetype == "application/problem+json"
        assert "query" in response.get_json()["errors"]


class TestAdminUpdateUser:
    def test_update_when_fields_valid_returns_user_and_stores_changes(
        self, client, user, admin_headers, outbox
    ):
        response = client.patch(
            f"{USERS}/{user.id}",
            json={"username": "Countess", "email": "Ada.L@example.com", "is_admin": True},
            headers=admin_headers,
        )

        body = response.get_json()
        stored = reload(user.id)
        assert response.status_code == 200
        assert (body["username"], body["email"], body["is_admin"]) == (
            "countess",
            "ada.l@example.com",
            True,
        )
        assert (stored.username, stored.email, stored.is_admin) == (
            "countess",
            "ada.l@example.com",
            True,
        )
        # A link to prove the new address; a notice to the old one (it can recover).
        assert sorted((m.to, m.subject) for m in outbox) == [
            ("ada.l@example.com", "Confirm your email address"),
            ("ada@example.com", "The email address of your account was changed"),
        ]

    @pytest.mark.parametrize("change", [{"is_active": False}, {"is_admin": False}])
    def test_update_when_access_removed_revokes_users_tokens_and_sessions_at_once(
        self, client, auth, admin_headers, change
    ):
        target = UserFactory(is_admin=True)
        headers = auth.headers_for(target)
        bystander = UserFactory()
        auth.headers_for(bystander)

        response = client.patch(f"{USERS}/{target.id}", json=change, headers=admin_headers)

        assert response.status_code == 200
        assert client.get(f"{USERS}/me", headers=headers).status_code == 401
        # The rows too: the user's session list is empty, nobody else's is touched.
        assert (live_sessions(target), live_sessions(bystander)) == (0, 1)

    @pytest.mark.parametrize("change", [{"is_active": False}, {"is_admin": False}])
    def test_update_when_admin_locks_out_self_returns_409_and_changes_nothing(
        self, client, admin_user, admin_headers, change
    ):
        response = client.patch(f"{USERS}/{admin_user.id}", json=change, headers=admin_headers)

        stored = reload(admin_user.id)
        assert response.status_code == 409
        assert "own account" in response.get_json()["detail"]
        assert (stored.is_active, stored.is_admin) == (True, True)
        assert client.get(f"{USERS}/me", headers=admin_headers).status_code == 200

    def test_update_when_email_taken_returns_409(self, client, user, admin_user, admin_headers):
        response = client.patch(
            f"{USERS}/{user.id}", json={"email": "GRACE@example.com"}, headers=admin_headers
        )

        assert response.status_code == 409
        assert response.get_json()["detail"] == "An account with this email already exists."
        assert reload(user.id).email == "ada@example.com"

    @pytest.mark.parametrize(
        "payload",
        [
            {},
            {"is_admin": "yes"},
            {"is_active": 1},
            {"password_hash": "x"},
            {"is_verified": True},
            {"username": "no spaces allowed"},
        ],
        ids=["empty", "bool-string", "bool-int", "hash", "is_verified", "bad-username"],
    )
    def test_update_when_body_invalid_returns_422_and_changes_nothing(
        self, client, user, admin_headers, payload
    ):
        response = client.patch(f"{USERS}/{user.id}", json=payload, headers=admin_headers)

        stored = reload(user.id)
        assert response.status_code == 422
        assert (stored.username, stored.is_admin, stored.is_active) == ("ada", False, True)

    def test_update_when_user_unknown_returns_404(self, client, admin_headers):
        response = client.patch(f"{USERS}/999999", json={"is_admin": True}, headers=admin_headers)

        assert response.status_code == 404
        assert response.get_json()["detail"] == "User not found."


class TestAdminFreshTokenRule:
    """Through /users/<id> as through /users/me: changing an email (where reset links
    go) or granting admin needs a fresh token. No back door for an admin's own
    account either."""

    @pytest.mark.parametrize(
        "change", [{"email": "taken.over@example.com"}, {"is_admin": True}], ids=["email", "admin"]
    )
    def test_update_when_token_refreshed_and_change_hands_over_returns_401_and_changes_nothing(
        self, client, auth, admin_user, user, outbox, change
    ):
        headers = auth.refreshed_headers_for(admin_user)

        response = client.patch(f"{USERS}/{user.id}", json=change, headers=headers)

        stored = reload(user.id)
        assert response.status_code == 401
        assert response.get_json()["detail"] == "A fresh token is required: log in again."
        assert "invalid_token" in response.headers["WWW-Authenticate"]
        assert (stored.email, stored.is_admin) == (user.email, False)
        assert outbox == []

    def test_update_own_email_when_token_refreshed_returns_401_as_me_does(
        self, client, auth, admin_user
    ):
        headers = auth.refreshed_headers_for(admin_user)

        through_id = client.patch(
            f"{USERS}/{admin_user.id}", json={"email": "new@example.com"}, headers=headers
        )
        through_me = client.patch(f"{USERS}/me", json={"email": "new@example.com"}, headers=headers)

        assert through_id.status_code == through_me.status_code == 401
        assert through_id.get_json()["detail"] == through_me.get_json()["detail"]
        assert reload(admin_user.id).email == admin_user.email

    @pytest.mark.parametrize(
        "change",
        [{"username": "renamed"}, {"is_active": False}, {"is_admin": False}],
        ids=["username", "deactivate", "demote"],
    )
    def test_update_when_token_refreshed_and_change_takes_nothing_over_is_allowed(
        self, client, auth, admin_user, change
    ):
        target = UserFactory(is_admin=True)
        headers = auth.refreshed_headers_for(admin_user)

        response = client.patch(f"{USERS}/{target.id}", json=change, headers=headers)

        assert response.status_code == 200
        key, value = next(iter(change.items()))
        assert getattr(reload(target.id), key) == value

    def test_update_when_token_fresh_grants_admin(self, client, user, admin_headers):
        response = client.patch(
            f"{USERS}/{user.id}", json={"is_admin": True}, headers=admin_headers
        )

        assert response.status_code == 200
        assert reload(user.id).is_admin is True


class TestAdminDeleteUser:
    def test_delete_when_other_user_removes_it_and_its_tokens(
        self, client, auth, user, admin_headers
    ):
        headers = auth.headers_for(user)

        response = client.delete(f"{USERS}/{user.id}", headers=admin_headers)

        assert response.status_code == 204
        assert reload(user.id) is None
        assert client.get(f"{USERS}/me", headers=headers).status_code == 401

    def test_delete_when_self_returns_409_and_keeps_account(
        self, client, admin_user, admin_headers
    ):
        response = client.delete(f"{USERS}/{admin_user.id}", headers=admin_headers)

        assert response.status_code == 409
        assert reload(admin_user.id) is not None

    @pytest.mark.parametrize("user_id", ["999999", "0", "-3", "x", "99999999999999999999"])
    def test_delete_when_id_not_a_user_returns_404(self, client, admin_headers, user_id):
        response = client.delete(f"{USERS}/{user_id}", headers=admin_headers)

        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
