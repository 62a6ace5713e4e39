"""Rate limits: declared on views, enforced by one Flask-Limiter per app.

Views are marked with ``@rate_limit(...)``; ``init_rate_limits`` wraps every
marked view of an app with that app's own ``Limiter``. One limiter per app (not a
module-level one) because Flask-Limiter keeps its storage and on/off switch on
the instance: a shared instance would make two apps (a worker and a test app, or
two test apps) overwrite each other's settings.

Values come from configuration (``RATELIMIT_LOGIN``, ...), storage from
``RATELIMIT_STORAGE_URI`` (``memory://`` in development, Redis in production so
that every process counts together).

Limits that need to know who is asking (the account a login names, the user a
token belongs to) are ``Budget``s, spent by the code that knows: a service, or a
view behind its ``jwt_required`` (``per_user``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec, TypeVar, cast

from flask import Flask, Response, current_app, request
from flask_jwt_extended import get_jwt_identity
from flask_limiter import Limiter
from limits import RateLimitItem, parse
from limits.strategies import RateLimiter
from redis.exceptions import RedisError
from werkzeug.middleware.proxy_fix import ProxyFix

from myapp.errors import TooManyRequests, Unavailable, handle_app_error

EXTENSION_KEY = "myapp.limiter"
P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


def client_ip() -> str:
    """The client address: the socket peer, or what ProxyFix derived from
    ``X-Forwarded-For`` when ``PROXY_FIX_X_FOR`` trusted proxies are configured."""
    return request.remote_addr or "unknown"


@dataclass(frozen=True)
class LimitSpec:
    config_key: str
    key_func: Callable[[], str] = client_ip
    message: str = "Too many requests; try again later."


def rate_limit(
    config_key: str,
    *,
    key_func: Callable[[], str] = client_ip,
    message: str = "Too many requests; try again later.",
) -> Callable[[F], F]:
    """Mark a view as limited by the limit string in ``config[config_key]``."""

    def mark(view: F) -> F:
        view.__dict__.setdefault("rate_limits", []).append(LimitSpec(config_key, key_func, message))
        return view

    return mark


def init_rate_limits(app: Flask) -> Limiter:
    """Trust the configured proxies, create the app's limiter, apply marked limits."""
    hops = int(app.config["PROXY_FIX_X_FOR"])
    if hops:
        # Only as many X-Forwarded-For entries as there are proxies we run are
        # believed; anything a client prepends is ignored. Only the address: the
        # app builds no URL from the request (links come from APP_BASE_URL), so no
        # other forwarded header is trusted: x_proto off (it defaults to 1), x_host,
        # x_port and x_prefix are off by default.
        # Flask documents wrapping app.wsgi_app; its stubs call it a method.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=0)  # type: ignore[method-assign]
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


class Budget:
    """So many uses per window for each key (an account, a user), spent before the
    work it pays for.

    Spending is one atomic increment in the rate-limit storage (Redis INCR in
    production), so however many requests race, at most the limit pass; and every
    process behind the load balancer spends from the same count.
    """

    def __init__(
        self, strategy: RateLimiter | None, limit: RateLimitItem, scope: str, message: str
    ) -> None:
        self._strategy = strategy  # None: rate limits are switched off
        self._limit = limit
        self._scope = scope
        self._message = message

    @classmethod
    def of(cls, app: Flask, config_key: str, message: str) -> Budget:
        """The budget ``config[config_key]`` (``"10 per hour"``), in ``app``'s storage."""
        limiter = limiter_of(app)
        strategy = limiter.limiter if limiter.enabled else None
        # Under the app's key prefix, like every Flask-Limiter key: apps sharing a
        # Redis keep their counts apart.
        scope = f"{app.config['RATELIMIT_KEY_PREFIX']}:{config_key}"
        return cls(strategy, parse(app.config[config_key]), scope, message)

    def spend(self, key: str) -> None:
        """Take one use for ``key``, or raise ``TooManyRequests`` (with Retry-After)."""
        if self._strategy is None or self._strategy.hit(self._limit, self._scope, key):
            return
        reset_at, _ = self._strategy.get_window_stats(self._limit, self._scope, key)
        raise TooManyRequests(self._message, retry_after=max(1, math.ceil(reset_at - time.time())))

    def refund(self, key: str) -> None:
        """Give back the use just spent for ``key`` (the work turned out free)."""
        if self._strategy is not None:
            self._strategy.storage.incr(
                self._limit.key_for(self._scope, key), self._limit.get_expiry(), amount=-1
            )


def per_user(config_key: str, message: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Inside ``jwt_required``: each call spends one use of the caller's budget
    ``config[config_key]``. Views that name the same key share one budget."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            Budget.of(current_app, config_key, message).spend(str(get_jwt_identity()))
            return view(*args, **kwargs)

        return wrapper

    return decorate
