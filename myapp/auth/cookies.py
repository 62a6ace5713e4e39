"""Browser transport: the refresh token in an httpOnly cookie, with CSRF protection.

A browser client asks for it with ``X-Token-Transport: cookie`` on login, the
login's second step and refresh. The refresh token then never reaches
JavaScript: flask-jwt-extended sets it as ``myapp_refresh`` (HttpOnly,
SameSite=Strict, Path=/api/v1/auth, Secure over https, Max-Age the session's
remaining life) beside a readable ``myapp_csrf`` cookie carrying the token's
``csrf`` claim. The access token stays in the JSON body (kept in memory).

Requests that present the cookie (refresh, logout) must also
- repeat the CSRF value in ``X-CSRF-Token`` (flask-jwt-extended compares it with
  the token's claim: a page on another site cannot read it), and
- come from a trusted origin (``Origin``, else ``Referer``, in ``APP_BASE_URL`` or
  ``CORS_ORIGINS``): defence in depth should SameSite ever not apply (an old
  browser, a sibling subdomain).
Otherwise 403, before anything is rotated or revoked.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, after_this_request, current_app, request
from flask_jwt_extended import (
    get_csrf_token,
    get_jwt_request_location,
    set_refresh_cookies,
    unset_refresh_cookies,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import CSRFError

from myapp.auth.tokens import TokenPair
from myapp.errors import Forbidden, handle_app_error

P = ParamSpec("P")
R = TypeVar("R")

TRANSPORT_HEADER = "X-Token-Transport"
COOKIE_TRANSPORT = "cookie"


class CsrfTokenMissing(Forbidden):
    detail = "The X-CSRF-Token header must repeat the myapp_csrf cookie's value."


class UntrustedOrigin(Forbidden):
    detail = "Cross-site request refused: its Origin is not this site's or a configured one."


def install(app: Flask) -> None:
    # Replaces flask-jwt-extended's own handler (a 401 would send the page to refresh).
    app.register_error_handler(CSRFError, lambda error: handle_app_error(CsrfTokenMissing()))


def deliver(tokens: TokenPair, transport: str | None) -> TokenPair | dict[str, Any]:
    """What to answer for a new token pair: the pair itself, or (cookie transport)
    the access token in the body and the refresh token in cookies."""
    if transport != COOKIE_TRANSPORT:
        return tokens
    refresh = tokens.refresh_token

    @after_this_request
    def set_cookies(response: Response) -> Response:
        # max(1, ...): 0 would mean "the library's default", not "expired".
        set_refresh_cookies(response, refresh, max_age=max(1, tokens.refresh_expires_in))
        return response

    return {
        "access_token": tokens.access_token,
        "token_type": tokens.token_type,
        "expires_in": tokens.expires_in,
        # Also in the body: a page on an allowed other origin cannot read our cookie.
        "csrf_token": get_csrf_token(refresh),
    }


def clear_cookies() -> None:
    """Make this request's response delete both cookies (logout)."""

    @after_this_request
    def unset(response: Response) -> Response:
        unset_refresh_cookies(response)
        return response


def refresh_token_required(view: Callable[P, R]) -> Callable[P, R]:
    """A refresh token from the Authorization header or the cookie; from the cookie,
    with a CSRF token and a trusted origin."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        verify_jwt_in_request(refresh=True, locations=["headers", "cookies"])
        if get_jwt_request_location() == "cookies":
            require_trusted_origin()
        return view(*args, **kwargs)

    return wrapper


def access_token_or_refresh_cookie(view: Callable[P, R]) -> Callable[P, R]:
    """An access token in the Authorization header or, with no such header, the
    refresh cookie (with its CSRF token and a trusted origin): logout works for a
    page that has lost its in-memory access token."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        cookie = current_app.config["JWT_REFRESH_COOKIE_NAME"]
        if "Authorization" not in request.headers and cookie in request.cookies:
            verify_jwt_in_request(refresh=True, locations=["cookies"])
            require_trusted_origin()
        else:
            verify_jwt_in_request()
        return view(*args, **kwargs)

    return wrapper


def require_trusted_origin() -> None:
    """The request's Origin (or its Referer's origin) is this site or a configured
    CORS origin; ``UntrustedOrigin`` otherwise, a missing one included."""
    origin = request.headers.get("Origin")
    if origin is None and (referer := request.headers.get("Referer")):
        origin = origin_of(referer)
    config = current_app.config
    trusted = {origin_of(config["APP_BASE_URL"]), *map(origin_of, config["CORS_ORIGINS"])}
    if origin is None or origin_of(origin) not in trusted:
        raise UntrustedOrigin()


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, default ports dropped."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if not scheme or not host:
        return ""
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
