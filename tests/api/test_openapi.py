"""The OpenAPI document served at /api/openapi.json."""

from __future__ import annotations

import re

OPENAPI_URL = "/api/openapi.json"


def openapi_path(rule: str) -> str:
    """Flask's ``/users/<int:user_id>`` is OpenAPI's ``/users/{user_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


class TestOpenApiDocument:
    def test_openapi_when_requested_documents_every_route_and_method(self, app, client):
        paths = client.get(OPENAPI_URL).get_json()["paths"]

        routes = {
            (openapi_path(rule.rule), method.lower())
            for rule in app.url_map.iter_rules()
            if rule.rule != OPENAPI_URL
            for method in rule.methods - {"HEAD", "OPTIONS"}
        }
        documented = {
            (path, method)
            for path, item in paths.items()
            for method in item
            if method != "parameters"
        }
        assert routes == documented
        assert ("/api/v1/users/me", "get") in documented

    def test_openapi_when_requested_declares_bearer_scheme_on_protected_endpoints(self, client):
        document = client.get(OPENAPI_URL).get_json()

        scheme = document["components"]["securitySchemes"]["bearerAuth"]
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
        assert document["paths"]["/api/v1/users/me"]["get"]["security"] == [{"bearerAuth": []}]
        assert "security" not in document["paths"]["/api/v1/auth/login"]["post"]
