"""Request ids, JSON logs, security headers and CORS: what every response and log
line carries, whatever the endpoint."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, current_app, g, has_request_context, request
from flask_cors import CORS

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is echoed only when it is short and harmless; anything else could
# smuggle text into logs, so we make our own.
_VALID_REQUEST_ID = re.compile(r"\A[A-Za-z0-9._:-]{1,128}\Z")

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
# The docs page loads its script, styles and images from this server only.
# 'unsafe-inline' for styles only: Swagger UI sets style attributes; scripts stay strict.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
_HANDLER_MARK = "_myapp_json_handler"
# Attributes every LogRecord has; anything else was passed with extra= and is logged.
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def current_request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


def client_ip() -> str | None:
    return request.remote_addr if has_request_context() else None


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        entry.update(
            {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and k not in entry}
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(app: Flask) -> None:
    """JSON lines on stderr for the app's loggers (``myapp`` and children), once."""
    logger = logging.getLogger("myapp")
    logger.setLevel(app.config["LOG_LEVEL"])
    if app.config["LOG_FORMAT"] != "json" or any(
        getattr(h, _HANDLER_MARK, False) for h in logger.handlers
    ):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    setattr(handler, _HANDLER_MARK, True)
    logger.addHandler(handler)


# The account console: its own scripts and styles only; the QR code is a data: image.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def register_request_hooks(app: Flask) -> None:
    app.before_request(_assign_request_id)
    app.after_request(_add_response_headers)
    origins = app.config["CORS_ORIGINS"]
    if origins:
        # Only the configured origins. Credentials: their pages may use the refresh
        # cookie (cookie transport), always with the CSRF header and an Origin check.
        CORS(
            app,
            origins=origins,
            allow_headers=[
                "Authorization",
                "Content-Type",
                REQUEST_ID_HEADER,
                "X-CSRF-Token",
                "X-Token-Transport",
            ],
            expose_headers=["X-Pagination", REQUEST_ID_HEADER, "Retry-After"],
            supports_credentials=True,
            max_age=600,
        )


def _assign_request_id() -> None:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex


# Public by nature, and worth caching: they set their own Cache-Control.
PUBLIC_DOCUMENTS = {"/.well-known/jwks.json"}


def _add_response_headers(response: Response) -> Response:
    headers = response.headers
    if request_id := current_request_id():
        headers[REQUEST_ID_HEADER] = request_id
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    is_docs = request.path == "/docs" or request.path.startswith("/docs/")
    is_console = request.path == "/account" or request.path.startswith("/account/")
    policy = DOCS_CSP if is_docs else CONSOLE_CSP if is_console else API_CSP
    headers.setdefault("Content-Security-Policy", policy)
    if not is_docs and request.path not in PUBLIC_DOCUMENTS:
        # Responses carry personal data and tokens: no cache may keep them.
        headers["Cache-Control"] = "no-store"
    if current_app.config["HSTS_ENABLED"]:
        headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
    return response
