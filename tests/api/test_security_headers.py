"""Security headers on every response (errors included), CORS, request ids."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from myapp import create_app
from myapp.config import ProductionConfig
from myapp.observability import API_CSP, CONSOLE_CSP, DOCS_CSP, JSONFormatter
from tests.support.database import sensitive_keys, variant_app

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture
def responses(client, auth_headers):
    """One response of each kind: success, each error family, the docs page."""
    return {
        "200": client.get("/api/v1/users/me", headers=auth_headers),
        "401": client.get("/api/v1/users/me"),
        "404": client.get("/nowhere"),
        "405": client.delete("/health"),
        "415": client.post("/api/v1/auth/login", data="x"),
        "422": client.post("/api/v1/auth/login", json={}),
    }


class TestSecurityHeaders:
    def test_api_responses_when_any_status_carry_security_headers(self, responses):
        for status, response in responses.items():
            assert str(response.status_code) == status
            for header, value in COMMON.items():
                assert response.headers[header] == value, (status, header)
            assert response.headers["Content-Security-Policy"] == API_CSP
            assert response.headers["Cache-Control"] == "no-store"
            assert "Strict-Transport-Security" not in response.headers

    def test_docs_page_when_served_gets_a_policy_that_lets_it_run(self, client):
        response = client.get("/docs")

        assert response.headers["Content-Security-Policy"] == DOCS_CSP
        assert "frame-ancestors 'none'" in DOCS_CSP and "script-src 'self'" in DOCS_CSP
        assert response.headers["X-Content-Type-Options"] == "nosniff"

    def test_docs_asset_when_served_may_be_cached_for_an_hour(self, client):
        # Swagger UI's own files: nothing personal in them, and large.
        response = client.get("/docs/swagger-ui/swagger-ui-bundle.js")
        response.close()  # the headers are all this test reads

        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "public, max-age=3600"
        assert response.headers["Content-Security-Policy"] == DOCS_CSP

    def test_production_when_serving_sends_hsts(self):
        env = {"SECRET_KEY": "s" * 40, "JWT_SECRET_KEY": "j" * 40, "DATABASE_URL": "sqlite://"}
        app = create_app(
            ProductionConfig(env),
            overrides={
                "APP_BASE_URL": "https://a.example",
                "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379",
                "ENCRYPTION_KEY": Fernet.generate_key().decode(),
            },
        )

        response = app.test_client().get("/health")

        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


class TestCors:
    def test_cors_when_no_origin_configured_allows_none(self, client):
        response = client.get("/health", headers={"Origin": "https://app.example"})

        assert "Access-Control-Allow-Origin" not in response.headers

    def test_cors_when_origin_configured_allows_only_it(self):
        with variant_app(CORS_ORIGINS=["https://app.example"]) as app:
            client = app.test_client()
            allowed = client.options(
                "/api/v1/users/me",
                headers={
                    "Origin": "https://app.example",
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "Authorization, X-CSRF-Token",
                },
            )
            other = client.get("/health", headers={"Origin": "https://evil.example"})

        assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "authorization" in allowed.headers["Access-Control-Allow-Headers"].lower()
        # Credentials for the configured origin only: its page may use cookie transport.
        assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
        assert "x-csrf-token" in allowed.headers["Access-Control-Allow-Headers"].lower()
        assert "Access-Control-Allow-Origin" not in other.headers
        assert "Access-Control-Allow-Credentials" not in other.headers

    def test_cors_preflight_when_asked_for_our_headers_allows_each_and_caches_ten_minutes(self):
        asked = [
            "Authorization",
            "Content-Type",
            "X-Request-ID",
            "X-CSRF-Token",
            "X-Token-Transport",
        ]
        with variant_app(CORS_ORIGINS=["https://app.example"]) as app:
            response = app.test_client().options(
                "/api/v1/auth/refresh",
                headers={
                    "Origin": "https://app.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": ", ".join([*asked, "X-Evil"]),
                },
            )

        allowed = {
            h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
        }
        assert allowed == {header.lower() for header in asked}  # not X-Evil
        assert response.headers["Access-Control-Max-Age"] == "600"

    def test_cors_response_when_from_a_configured_origin_exposes_what_pages_read(self):
        with variant_app(CORS_ORIGINS=["https://app.example"]) as app:
            response = app.test_client().get("/health", headers={"Origin": "https://app.example"})

        exposed = response.headers["Access-Control-Expose-Headers"].lower()
        assert {h.strip() for h in exposed.split(",")} == {
            "x-pagination",
            "x-request-id",
            "retry-after",
        }


class TestRequestId:
    def test_request_id_when_client_sends_one_is_echoed_in_header_and_problem(self, client):
        response = client.get("/nowhere", headers={"X-Request-ID": "abc-123"})

        assert response.headers["X-Request-ID"] == "abc-123"
        assert response.get_json()["request_id"] == "abc-123"

    @pytest.mark.parametrize("given", [None, "", "x" * 129, "<script>", "a b", "tab\tid"])
    def test_request_id_when_missing_or_unsafe_is_generated(self, client, given):
        headers = {} if given is None else {"X-Request-ID": given}

        response = client.get("/health", headers=headers)

        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


class TestJsonLogs:
    def test_formatter_when_record_has_extras_writes_one_json_object(self):
        record = logging.makeLogRecord(
            {
                "name": "myapp.audit",
                "levelname": "INFO",
                "msg": "login.succeeded",
                "event": "login.succeeded",
                "user_id": 7,
                "request_id": "r-1",
            }
        )

        line = JSONFormatter().format(record)

        entry = json.loads(line)
        assert "\n" not in line
        # The fields and the extras, none of the LogRecord's own attributes.
        assert set(entry) == {"time", "level", "logger", "message", "request_id"} | {
            "event",
            "user_id",
        }
        assert entry["message"] == entry["event"] == "login.succeeded"
        assert (entry["user_id"], entry["request_id"], entry["logger"]) == (7, "r-1", "myapp.audit")
        assert entry["level"] == "INFO" and entry["time"].endswith("+00:00")

    def test_formatter_when_an_extra_is_not_json_writes_its_text(self):
        # A log call must never fail (and lose the line) over a value JSON lacks.
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        record = logging.makeLogRecord({"msg": "key.rotated", "at": at})

        entry = json.loads(JSONFormatter().format(record))

        assert (entry["at"], entry["request_id"]) == (str(at), None)

    def test_app_logger_when_configured_writes_json_lines(self, app):
        handlers = [
            h for h in logging.getLogger("myapp").handlers if isinstance(h.formatter, JSONFormatter)
        ]

        assert len(handlers) == 1  # once, however many apps were created


class TestLoggingSetup:
    """``configure_logging`` on a logger emptied for the test (the suite's first app
    has configured the real one already)."""

    @pytest.fixture
    def bare_logger(self, monkeypatch):
        logger = logging.getLogger("myapp")
        monkeypatch.setattr(logger, "handlers", [])
        monkeypatch.setattr(logger, "level", logger.level)
        return logger

    def test_apps_when_json_logging_add_one_json_handler_on_stderr_between_them(self, bare_logger):
        create_app("testing", overrides={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"})
        create_app("testing", overrides={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"})

        (handler,) = bare_logger.handlers
        assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr
        assert isinstance(handler.formatter, JSONFormatter)
        assert bare_logger.level == logging.INFO

    def test_app_when_logger_has_a_handler_of_someone_else_still_adds_its_own(self, bare_logger):
        foreign = logging.NullHandler()  # an operator's, say an error tracker's
        bare_logger.addHandler(foreign)

        create_app("testing", overrides={"LOG_FORMAT": "json"})

        assert bare_logger.handlers[0] is foreign
        assert [type(h.formatter) for h in bare_logger.handlers[1:]] == [JSONFormatter]

    def test_app_when_text_logging_adds_no_handler_but_sets_the_level(self, bare_logger):
        create_app("testing", overrides={"LOG_FORMAT": "text", "LOG_LEVEL": "ERROR"})

        assert (bare_logger.handlers, bare_logger.level) == ([], logging.ERROR)


class TestNoSecretsInResponses:
    """Every JSON response of the suite is walked by the test client (see
    ``tests/support/database.py``); these prove the walk itself."""

    def test_sensitive_keys_when_value_leaks_hash_finds_it(self):
        body = {"id": 1, "profile": {"password_hash": "$argon2id$..."}, "items": [{"salt": 1}]}

        assert sensitive_keys(body) == ["/profile/password_hash", "/items/0/salt"]

    def test_sensitive_keys_when_only_validation_errors_name_fields_finds_nothing(self):
        body = {"status": 422, "errors": {"json": {"password": ["Too short."]}}}

        assert sensitive_keys(body) == []


class TestConsolePages:
    @pytest.mark.parametrize("path", ["/account", "/account/signin", "/account/verify"])
    def test_console_page_when_served_has_a_strict_policy_and_no_inline_script(self, client, path):
        response = client.get(path)

        html = response.get_data(as_text=True)
        assert response.status_code == 200 and response.mimetype == "text/html"
        assert response.headers["Content-Security-Policy"] == CONSOLE_CSP
        assert "script-src 'self'" in CONSOLE_CSP and "unsafe" not in CONSOLE_CSP
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"
        # Every script is a file of ours: none inline, none from elsewhere.
        scripts = re.findall(r"<script([^>]*)>", html)
        assert scripts and all('src="/account/static/' in attributes for attributes in scripts)

    def test_console_when_path_unknown_is_a_404_problem(self, client):
        response = client.get("/account/nowhere")

        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
