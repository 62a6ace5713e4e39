"""Sign-in with OpenID Providers: the provider list, the redirect to a provider and
its callback (browser navigations: they answer redirects, and a failure lands on
the console with a problem code), linking from a signed-in session, and the
user's linked identities. Thin views, as elsewhere."""

from __future__ import annotations

import secrets
from typing import Any, cast
from urllib.parse import urlencode

from flask import Response as FlaskResponse
from flask import current_app, request
from flask_jwt_extended import current_user, jwt_required, set_refresh_cookies
from werkzeug.wrappers import Response

from myapp.access import BEARER
from myapp.audit import audit
from myapp.auth.models import OidcIdentity
from myapp.auth.oidc import AUTHORIZATION_LIFETIME, Linked, OidcService, SecondStep
from myapp.auth.oidc_client import OidcFailure
from myapp.auth.routes import LOGIN_ATTEMPTS_MESSAGE, client_info
from myapp.auth.schemas import (
    AuthorizeUrlSchema,
    CallbackQuerySchema,
    IdentitySchema,
    LinkSchema,
    NextSchema,
    ProviderSchema,
)
from myapp.errors import Unavailable
from myapp.openapi import Blueprint, problems
from myapp.ratelimit import per_user, rate_limit

# Binds a pending sign-in to the browser that started it (login CSRF): httpOnly,
# only sent to these endpoints, and Lax, since the provider's redirect back is a
# cross-site top-level navigation (Strict would drop it).
BROWSER_COOKIE = "myapp_oidc"
BROWSER_COOKIE_PATH = "/api/v1/auth/oidc"
SIGN_IN_PAGE = "/account/signin"
LINKS_PAGE = "/account/linked"

blp = Blueprint(
    "oidc",
    __name__,
    url_prefix="/api/v1",
    description="Sign-in with OpenID Connect providers, and linked identities.",
)


@blp.route("/auth/oidc/providers")
@blp.response(200, ProviderSchema(many=True))
def providers() -> list[Any]:
    """The configured providers (an empty list when none is)."""
    return OidcService.from_app().list_providers()


@blp.route("/auth/oidc/<provider>/authorize")
@problems(blp, 404, 422, 429)
@rate_limit("RATELIMIT_LOGIN", message=LOGIN_ATTEMPTS_MESSAGE)
@blp.arguments(NextSchema, location="query")
@blp.response(302, headers={"Location": {"schema": {"type": "string"}}})
def authorize(query: dict[str, str], provider: str) -> Response:
    """Send the browser to the provider to sign in (code flow, PKCE S256).

    ``next``: a path on this site to land on afterwards (default ``/account``).
    """
    browser = _browser_secret()
    try:
        url = OidcService.from_app().start(provider, query["next"], browser)
    except OidcFailure as failure:  # the provider is unreachable or misconfigured
        return _failed(provider, failure, SIGN_IN_PAGE)
    return _with_browser_cookie(_redirect(url), browser)


@blp.route("/auth/oidc/<provider>/link", methods=["POST"])
@problems(blp, 401, 404, 422, 429, 503)
@blp.doc(security=BEARER)
@blp.arguments(LinkSchema)
@blp.response(200, AuthorizeUrlSchema)
@jwt_required(fresh=True)
# Per user: each call stores a pending link (a way in, once completed).
@per_user("RATELIMIT_MFA_CHANGES", "Too many new sign-in methods; try again later.")
def link(data: dict[str, str], provider: str) -> Any:
    """Start linking a provider's account to this one: open ``authorize_url``.

    Needs a fresh token: a stolen refreshed session must not plant its own way in.
    """
    browser = _browser_secret()
    try:
        url = OidcService.from_app().start(provider, data["next"], browser, link_user=current_user)
    except OidcFailure as failure:  # the provider is unreachable or misconfigured
        _audit_failure(provider, failure, user_id=current_user.id)
        raise Unavailable("The provider cannot be reached; retry shortly.") from None
    response = cast(Response, current_app.json.response({"authorize_url": url}))
    return _with_browser_cookie(response, browser)


@blp.route("/auth/oidc/<provider>/callback")
@problems(blp, 404, 429)
@rate_limit("RATELIMIT_LOGIN", message=LOGIN_ATTEMPTS_MESSAGE)
@blp.arguments(CallbackQuerySchema, location="query")
@blp.response(302, headers={"Location": {"schema": {"type": "string"}}})
def callback(query: dict[str, str], provider: str) -> Response:
    """Where the provider sends the browser back.

    Redirects to ``next`` signed in (the refresh token in its cookie), to the
    console's second step, or to the console with ``?problem=<code>``.
    """
    service = OidcService.from_app()
    service.settings(provider)  # 404 for an unknown provider, before anything else
    landing = SIGN_IN_PAGE
    try:
        if "state" not in query:
            raise OidcFailure("oidc_state", "no state")
        # Spent first, whatever the provider said: a state works once.
        pending = service.take(provider, query["state"], request.cookies.get(BROWSER_COOKIE))
        if pending.link_user_id is not None:
            landing = LINKS_PAGE
        if "error" in query or "code" not in query:
            raise OidcFailure("oidc_provider", f"provider answered {query.get('error')}")
        outcome = service.complete(
            pending, code=query["code"], iss=query.get("iss"), client=client_info()
        )
    except OidcFailure as failure:
        return _failed(provider, failure, landing)
    if isinstance(outcome, Linked):
        return _redirect(outcome.next_path)
    if isinstance(outcome, SecondStep):
        # In the fragment: it never reaches a server log.
        fragment = urlencode(
            {"mfa_token": outcome.mfa.mfa_token, "methods": ",".join(outcome.mfa.methods)}
        )
        return _redirect(f"{SIGN_IN_PAGE}#{fragment}")
    response = _redirect(outcome.next_path)
    tokens = outcome.tokens
    set_refresh_cookies(
        cast(FlaskResponse, response),
        tokens.refresh_token,
        max_age=max(1, tokens.refresh_expires_in),
    )
    return response


def _audit_failure(provider: str, failure: OidcFailure, user_id: int | None = None) -> None:
    audit(
        "oidc.failed",
        user_id=user_id,
        provider=provider,
        code=failure.code,
        reason=failure.reason,
    )


def _failed(provider: str, failure: OidcFailure, landing: str) -> Response:
    """A browser navigation that failed lands on the console, which shows the code."""
    _audit_failure(provider, failure)
    return _redirect(f"{landing}?{urlencode({'problem': failure.code})}")


@blp.route("/users/me/identities")
@problems(blp, 401)
@blp.doc(security=BEARER)
@blp.response(200, IdentitySchema(many=True))
@jwt_required()
def identities() -> list[OidcIdentity]:
    """The provider accounts linked to this one."""
    return OidcService.from_app().identities(current_user)


@blp.route("/users/me/identities/<uuid:identity_id>", methods=["DELETE"])
@problems(blp, 401, 404, 409)
@blp.doc(security=BEARER)
@blp.response(204)
@jwt_required(fresh=True)
def unlink(identity_id: Any) -> None:
    """Unlink a provider account (fresh token).

    409 when it is the account's last way to sign in (no password, no passkey, no
    other linked account).
    """
    OidcService.from_app().unlink(current_user, str(identity_id))


def _redirect(location: str) -> Response:
    # No body: werkzeug's would be an HTML page, and nothing here answers HTML.
    return Response(status=302, headers={"Location": location})


def _browser_secret() -> str:
    # One per browser, kept across sign-ins: two tabs do not undo each other.
    return request.cookies.get(BROWSER_COOKIE) or secrets.token_urlsafe(32)


def _with_browser_cookie(response: Response, secret: str) -> Response:
    response.set_cookie(
        BROWSER_COOKIE,
        secret,
        max_age=int(AUTHORIZATION_LIFETIME.total_seconds()),
        path=BROWSER_COOKIE_PATH,
        secure=current_app.config["JWT_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )
    return response
