"""Liveness (/health) and readiness (/ready) probes for orchestrators and load
balancers."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from marshmallow import Schema, fields
from sqlalchemy.exc import SQLAlchemyError

from myapp.database.engine import ping_database
from myapp.errors import problem
from myapp.openapi import Blueprint, problems
from myapp.ratelimit import limiter_of

blp = Blueprint("health", __name__, description="Liveness and readiness.")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class ReadySchema(Schema):
    status = fields.String(required=True, metadata={"example": "ready"})
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"example": {"database": "ok", "redis": "ok"}},
    )


@blp.route("/health")
@blp.response(200, HealthSchema)
def health() -> dict[str, str]:
    """Liveness probe: the process answers. Touches no database, by design."""
    return {"status": "ok"}


@blp.route("/ready")
@problems(blp, 503)
@blp.response(200, ReadySchema)
def ready() -> dict[str, Any] | Response:
    """Readiness probe: the database answers, and Redis when rate limits use it.

    503 (problem+json, with the failing checks) takes the instance out of a load
    balancer's rotation until its dependencies are back.
    """
    checks = {"database": _check_database()}
    if not current_app.config["RATELIMIT_STORAGE_URI"].startswith("memory://"):
        checks["redis"] = "ok" if _redis_answers() else "unavailable"
    if all(value == "ok" for value in checks.values()):
        return {"status": "ready", "checks": checks}
    return problem(
        503,
        "Not ready: a dependency is unavailable.",
        headers={"Retry-After": "5"},
        checks=checks,
    )


def _check_database() -> str:
    try:
        ping_database()
    except SQLAlchemyError:
        return "unavailable"
    return "ok"


def _redis_answers() -> bool:
    try:
        return bool(limiter_of(current_app).storage.check())
    except Exception:  # any client error means "not answering"
        return False
