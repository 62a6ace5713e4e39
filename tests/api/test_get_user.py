"""GET /api/v1/users/<id> (administrators only)."""

from __future__ import annotations

import pytest


class TestGetUser:
    def test_get_user_when_admin_returns_user(self, client, user, admin_headers):
        response = client.get(f"/api/v1/users/{user.id}", headers=admin_headers)

        assert response.status_code == 200
        assert response.get_json()["id"] == user.id
        assert response.get_json()["email"] == user.email

    def test_get_user_when_not_admin_returns_403(self, client, user, auth_headers):
        response = client.get(f"/api/v1/users/{user.id}", headers=auth_headers)

        assert response.status_code == 403
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["detail"] == "Administrator rights are required."

    def test_get_user_when_no_token_returns_401(self, client, user):
        response = client.get(f"/api/v1/users/{user.id}")

        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    @pytest.mark.parametrize(
        "user_id",
        ["999999", "0", "-1", "abc", "1.5", "2147483648", "12345678901234567890"],
        ids=["unknown", "zero", "negative", "text", "decimal", "int32-overflow", "20-digits"],
    )
    def test_get_user_when_id_not_an_existing_user_returns_404(
        self, client, admin_headers, user_id
    ):
        response = client.get(f"/api/v1/users/{user_id}", headers=admin_headers)

        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["status"] == 404
