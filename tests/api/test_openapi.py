"""The OpenAPI document: valid, complete, honest about errors, and committed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from myapp import create_app
from myapp.extensions import api

OPENAPI_URL = "/api/openapi.json"
COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def openapi_path(rule: str) -> str:
    """Flask's ``/users/<int:user_id>`` is OpenAPI's ``/users/{user_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


@pytest.fixture
def document(client) -> dict:
    return client.get(OPENAPI_URL).get_json()


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


class TestOpenApiDocument:
    def test_openapi_when_served_is_valid_openapi_3_1(self, client, document):
        response = client.get(OPENAPI_URL)

        assert response.status_code == 200
        assert document["openapi"] == "3.1.0"
        validate(document)  # raises on any violation of the OpenAPI schema

    def test_openapi_when_requested_documents_every_route_and_nothing_else(self, app, document):
        routes = {
            (openapi_path(rule.rule), method.lower())
            for rule in app.url_map.iter_rules()
            if rule.rule != OPENAPI_URL and not rule.rule.startswith(("/docs", "/account"))
            for method in rule.methods - {"HEAD", "OPTIONS"}
        }
        documented = {(path, method) for path, method, _ in operations(document)}

        assert routes == documented
        public = ("/health", "/ready", "/.well-known/jwks.json")
        assert all(path.startswith("/api/") or path in public for path, _ in routes)

    def test_openapi_when_requested_describes_every_operation_from_code(self, document):
        for path, method, operation in operations(document):
            assert operation.get("summary"), f"{method} {path} has no summary"
            assert "\n" not in operation["summary"], f"{method} {path}: one-line summary"

    def test_openapi_when_requested_documents_errors_as_problem_json(self, document):
        for path, method, operation in operations(document):
            for status, response in operation["responses"].items():
                if status.isdigit() and int(status) < 400:
                    continue
                name = response["$ref"].rsplit("/", 1)[-1]
                content = document["components"]["responses"][name]["content"]
                assert list(content) == ["application/problem+json"], (method, path, status)
                assert content["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }

    def test_openapi_when_requested_declares_bearer_scheme_exactly_where_needed(self, document):
        scheme = document["components"]["securitySchemes"]["bearerAuth"]
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
        cookie = document["components"]["securitySchemes"]["refreshCookie"]
        assert (cookie["in"], cookie["name"]) == ("cookie", "myapp_refresh")
        either = [{"bearerAuth": []}, {"refreshCookie": [], "csrfHeader": []}]
        for path, _method, operation in operations(document):
            # Refresh and logout also take the refresh cookie (browsers).
            takes_cookie = path in ("/api/v1/auth/refresh", "/api/v1/auth/logout")
            expected = either if takes_cookie else [{"bearerAuth": []}]
            secured = operation.get("security") == expected
            # The sign-in steps answer 401 for wrong credentials, without a token.
            public = path in (
                "/api/v1/auth/login",
                "/api/v1/auth/login/mfa",
                "/api/v1/auth/login/mfa/passkey/options",
                "/api/v1/auth/passkeys/login",
            )
            assert secured == ("401" in operation["responses"] and not public), path

    def test_openapi_when_listing_users_documents_pagination_header(self, document):
        response = document["paths"]["/api/v1/users"]["get"]["responses"]["200"]

        assert "X-Pagination" in response["headers"]
        names = {p["name"] for p in document["paths"]["/api/v1/users"]["get"]["parameters"]}
        assert {
            "page",
            "per_page",
            "q",
            "sort",
            "is_active",
            "is_admin",
            "is_verified",
            "mfa",
        } <= names


class TestCommittedCopy:
    def test_committed_openapi_when_compared_with_an_app_made_here_is_current(self):
        committed = json.loads(COMMITTED.read_text())
        # An app made here, not the suite's: the document is assembled while the app
        # is made, and that is the code this test answers for.
        with create_app("testing").app_context():
            document = json.loads(json.dumps(api.spec.to_dict()))

        # `make openapi` (flask openapi write docs/openapi.json) refreshes it.
        assert committed == document
