"""The OpenAPI document served at /api/openapi.json."""

from __future__ import annotations


class TestOpenApiDocument:
    def test_openapi_when_requested_lists_every_endpoint(self, client):
        response = client.get("/api/openapi.json")

        paths = response.get_json()["paths"]
        assert response.status_code == 200
        assert set(paths) == {
            "/health",
            "/api/v1/auth/register",
            "/api/v1/auth/login",
            "/api/v1/users/me",
            "/api/v1/users/{user_id}",
        }

    def test_openapi_when_requested_declares_bearer_scheme_on_protected_endpoints(self, client):
        document = client.get("/api/openapi.json").get_json()

        scheme = document["components"]["securitySchemes"]["bearerAuth"]
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
        assert document["paths"]["/api/v1/users/me"]["get"]["security"] == [{"bearerAuth": []}]
        assert "security" not in document["paths"]["/api/v1/auth/login"]["post"]
