"""Rate limits: declared on views, enforced by one Flask-Limiter per app.

Views are marked with ``@rate_limit(...)``; ``init_rate_limits`` wraps every
marked view of an app with that app's own ``Limiter``. One limiter per app (not a
module-level one) because Flask-Limiter keeps its storage and on/off switch on
the instance: a shared instance would make two apps (a worker and a test app, or
two test apps) overwrite each other's settings.

Values come from configuration (``RATELIMIT_LOGIN``, ...), storage from
``RATELIMIT_STORAGE_URI`` (``memory://`` in development, Redis in production so
that every process counts together).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from redis.exceptions import RedisError
from werkzeug.middleware.proxy_fix import ProxyFix

from myapp.errors import Unavailable, handle_app_error

EXTENSION_KEY = "myapp.limiter"
F = TypeVar("F", bound=Callable[..., Any])


def client_ip() -> str:
    """The client address: the socket peer, or what ProxyFix derived from
    ``X-Forwarded-For`` when ``PROXY_FIX_X_FOR`` trusted proxies are configured."""
    return request.remote_addr or "unknown"


def failed_authentication(response: Response) -> bool:
    return bool(response.status_code == 401)


@dataclass(frozen=True)
class LimitSpec:
    config_key: str
    key_func: Callable[[], str] = client_ip
    deduct_when: Callable[[Response], bool] | None = None
    message: str = "Too many requests; try again later."


def rate_limit(
    config_key: str,
    *,
    key_func: Callable[[], str] = client_ip,
    deduct_when: Callable[[Response], bool] | None = None,
    message: str = "Too many requests; try again later.",
) -> Callable[[F], F]:
    """Mark a view as limited by the limit string in ``config[config_key]``."""

    def mark(view: F) -> F:
        view.__dict__.setdefault("rate_limits", []).append(
            LimitSpec(config_key, key_func, deduct_when, message)
        )
        return view

    return mark


def init_rate_limits(app: Flask) -> Limiter:
    """Trust the configured proxies, create the app's limiter, apply marked limits."""
    hops = int(app.config["PROXY_FIX_X_FOR"])
    if hops:
        # Only as many X-Forwarded-For entries as there are proxies we run are
        # believed; anything a client prepends is ignored.
        # Flask documents wrapping app.wsgi_app; its stubs call it a method.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    limiter = Limiter(key_func=client_ip, app=app)
    app.extensions[EXTENSION_KEY] = limiter
    # Limits are not skipped when their storage is down (that would switch off
    # brute-force protection silently): the request gets a 503 it may retry.
    app.register_error_handler(RedisError, _storage_unavailable)
    for endpoint, view in list(app.view_functions.items()):
        view = cast(Callable[..., Any], view)  # the marks below keep a sync view sync
        for spec in getattr(view, "rate_limits", ()):
            view = limiter.limit(
                _configured(spec.config_key),
                key_func=spec.key_func,
                deduct_when=spec.deduct_when,
                error_message=spec.message,
                scope=f"{endpoint}:{spec.config_key}",
            )(view)
        app.view_functions[endpoint] = view
    return limiter


def _storage_unavailable(error: RedisError) -> Response:
    current_app.logger.error("Rate-limit storage unavailable: %s", error.__class__.__name__)
    return handle_app_error(Unavailable("Rate limiting is unavailable; retry shortly."))


def _configured(config_key: str) -> Callable[[], str]:
    return lambda: current_app.config[config_key]


def limiter_of(app: Flask) -> Limiter:
    limiter: Limiter = app.extensions[EXTENSION_KEY]
    return limiter
