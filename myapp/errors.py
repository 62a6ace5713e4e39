"""Errors as RFC 9457 problem details (``application/problem+json``).

Services raise the ``AppError`` subclasses below (they know no Flask request);
the handlers registered by ``register_error_handlers`` turn them, HTTP errors,
validation errors and unexpected exceptions into one JSON shape.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, g, json
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

PROBLEM_MIMETYPE = "application/problem+json"


class AppError(Exception):
    """An error with an HTTP meaning, raised by the service layer."""

    status = HTTPStatus.BAD_REQUEST
    detail = "The request could not be processed."
    headers: Mapping[str, str] = {}

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        if detail is not None:
            self.detail = detail


class NotFound(AppError):
    status = HTTPStatus.NOT_FOUND
    detail = "The resource was not found."


class Conflict(AppError):
    status = HTTPStatus.CONFLICT
    detail = "The request conflicts with the current state of the resource."


class Unauthorized(AppError):
    status = HTTPStatus.UNAUTHORIZED
    detail = "Authentication is required."
    headers = {"WWW-Authenticate": 'Bearer realm="myapp"'}


class Unavailable(AppError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    detail = "A service this request needs is unavailable; retry shortly."
    headers = {"Retry-After": "5"}


class TooManyRequests(AppError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    detail = "Too many requests; try again later."

    def __init__(self, detail: str | None = None, *, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class Forbidden(AppError):
    status = HTTPStatus.FORBIDDEN
    detail = "You are not allowed to do this."


def problem(
    status: int,
    detail: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    **members: Any,
) -> Response:
    """Build a problem+json response. Extra ``members`` become extension members."""
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail or phrase,
    }
    if request_id := g.get("request_id"):  # set by every request; absent otherwise
        # Quote it to support and they find the matching log lines.
        body["request_id"] = request_id
    body.update(members)
    response: Response = current_app.response_class(
        json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE
    )
    response.headers.update(headers or {})
    return response


def handle_app_error(error: AppError) -> Response:
    return problem(error.status, error.detail, headers=error.headers)


def handle_http_exception(error: HTTPException) -> Response:
    """Werkzeug/Flask errors (404, 405, 413, ...) and webargs/smorest aborts."""
    data = getattr(error, "data", None) or {}
    members: dict[str, Any] = {}
    detail = error.description
    if "messages" in data:
        # webargs: {"json": {"field": ["message"]}} -> errors by location and field.
        members["errors"] = data["messages"]
        detail = (
            "The request contains invalid fields."
            if error.code == HTTPStatus.UNPROCESSABLE_ENTITY
            else "The request body could not be parsed."
        )
    # Keep headers such as Allow (405) but never the HTML Content-Type.
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    return problem(error.code or 500, detail, headers=headers, **members)


def handle_database_unavailable(error: Exception) -> Response:
    """The database refused or dropped the connection: a 503 the client may retry.

    SQLAlchemy discards the pool's connections when one is found dead, and idle
    ones are checked before use (database._ping_after_idle), so the app recovers
    by itself once the database is back.
    """
    from myapp.extensions import db  # late: extensions imports this module

    current_app.logger.error("Database unavailable: %s", error.__class__.__name__)
    with contextlib.suppress(SQLAlchemyError):  # the connection is gone; the session
        db.session.rollback()  # is discarded anyway
    return handle_app_error(Unavailable("The database is unavailable; retry shortly."))


def handle_unexpected_error(error: Exception) -> Response:
    # Log the traceback for operators; the client learns nothing about internals.
    current_app.logger.exception("Unhandled exception", exc_info=error)
    return problem(HTTPStatus.INTERNAL_SERVER_ERROR, "An unexpected error occurred.")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(AppError, handle_app_error)
    for error in (OperationalError, InterfaceError, PoolTimeout):
        app.register_error_handler(error, handle_database_unavailable)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected_error)
