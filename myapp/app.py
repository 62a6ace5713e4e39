"""The application factory. Read it as the table of contents of the app."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask

from myapp import commands, crypto, signing_keys
from myapp.auth import bearer, cookies
from myapp.auth.account import PASSWORD_RESET_EMAIL, password_reset_email
from myapp.auth.listeners import SessionsAndVerification
from myapp.auth.oidc_client import ProviderConfigError, parse_providers
from myapp.config import Config, ConfigurationError, provide_webauthn, resolve_config
from myapp.database.engine import configure_engine
from myapp.errors import register_error_handlers as _register_error_handlers
from myapp.extensions import api, db, jwt, mail, migrate, passwords
from myapp.observability import configure_logging, register_request_hooks
from myapp.outbox.service import prepare_with
from myapp.ratelimit import init_rate_limits
from myapp.signing_keys import KeySetError
from myapp.users import events as user_events


def create_app(
    config: str | type[Config] | Config | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    instance_path: str | None = None,
) -> Flask:
    """Build the app.

    ``config``: a name (development, testing, production), a config class or
    instance; default: the ``MYAPP_CONFIG`` environment variable, else development.
    ``overrides`` win over everything, including ``MYAPP_*`` variables.
    ``instance_path``: the instance folder (default: ``instance/`` beside the package).
    """
    # An API: no static folder (nothing to serve, and no /static route to probe).
    app = Flask(
        __name__.split(".")[0],
        instance_path=instance_path,
        static_folder=None,
    )
    configure_app(app, resolve_config(config), overrides)
    configure_logging(app)
    register_extensions(app)
    register_request_hooks(app)
    connect_domains(app)
    register_blueprints(app)
    init_rate_limits(app)  # after the blueprints: it wraps their marked views
    register_error_handlers(app)
    register_commands(app)
    return app


def configure_app(app: Flask, config: Config, overrides: Mapping[str, Any] | None) -> None:
    app.config.from_object(config)
    app.config.from_prefixed_env("MYAPP")
    app.config.update(overrides or {})
    for key in ("JWT_ACCESS_TOKEN_EXPIRES", "JWT_REFRESH_TOKEN_EXPIRES"):
        # MYAPP_JWT_ACCESS_TOKEN_EXPIRES=600 arrives as an int: seconds.
        value = app.config[key]
        if isinstance(value, int) and not isinstance(value, bool):
            app.config[key] = timedelta(seconds=value)
    # Links and redirect URIs are built as base + "/path"; providers compare
    # redirect URIs exactly, so a configured trailing "/" must not make "//path".
    app.config["APP_BASE_URL"] = str(app.config["APP_BASE_URL"]).rstrip("/")
    # Cookies are Secure whenever the site is served over https (production must be).
    app.config["JWT_COOKIE_SECURE"] = str(app.config["APP_BASE_URL"]).startswith("https://")
    if app.config["DATABASE_PGBOUNCER"]:
        behind_pgbouncer(app.config)
    provide_webauthn(app.config)  # the passkeys' relying party, from APP_BASE_URL
    try:  # a malformed provider list is found now, not at someone's sign-in
        parse_providers(app.config["OIDC_PROVIDERS"])
    except ProviderConfigError as error:
        raise ConfigurationError(f"Refusing to start: {error}") from None
    config.provide_secret_key(app.config, app.instance_path)
    config.provide_signing_keys(app.config, app.instance_path)
    config.validate(app.config)
    app.config["CONFIG_NAME"] = config.NAME


def behind_pgbouncer(config: Any) -> None:
    """No server-side prepared statements: in transaction mode each transaction
    may run on another server connection, where the statement does not exist."""
    if str(config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql"):
        options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options["connect_args"] = {**options.get("connect_args", {}), "prepare_threshold": None}
        config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            configure_engine(engine, app.config["DATABASE_PING_AFTER_IDLE_SECONDS"])
    migrate.init_app(app)
    jwt.init_app(app)
    bearer.install(jwt)  # the token check and its 401 answers
    try:  # EdDSA or RS256: sign and verify with the key set (HS256: the secret)
        signing_keys.install(app, jwt)
    except KeySetError as error:
        raise ConfigurationError(f"Refusing to start: {error}") from None
    cookies.install(app)  # a missing or wrong CSRF token is a 403
    passwords.init_app(app)
    crypto.init_app(app)  # the key secrets at rest are encrypted with
    mail.init_app(app)
    api.init_app(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    # Browsers' alternative on refresh and logout (myapp/auth/cookies.py).
    api.spec.components.security_scheme(
        "refreshCookie",
        {"type": "apiKey", "in": "cookie", "name": app.config["JWT_REFRESH_COOKIE_NAME"]},
    )
    api.spec.components.security_scheme(
        "csrfHeader",
        {"type": "apiKey", "in": "header", "name": app.config["JWT_CSRF_HEADER_NAME"]},
    )


def connect_domains(app: Flask) -> None:
    """Auth takes part in users' use cases (ending sessions, proving a new address)
    through users' events: users never imports auth. The mail worker writes reset
    emails with auth's help (the request only queues them)."""
    user_events.connect(app, SessionsAndVerification.from_app)
    prepare_with(app, PASSWORD_RESET_EMAIL, password_reset_email)


def register_blueprints(app: Flask) -> None:
    from myapp import apidocs, console, health
    from myapp.auth import jwks_routes, mfa_routes, oidc_routes, passkey_routes
    from myapp.auth import routes as auth_routes
    from myapp.users import routes as user_routes

    modules = (
        health,
        jwks_routes,
        auth_routes,
        mfa_routes,
        passkey_routes,
        oidc_routes,
        user_routes,
    )
    for module in modules:
        api.register_blueprint(module.blp)
    app.register_blueprint(apidocs.blp)  # /docs: not part of the API document
    app.register_blueprint(console.blp)  # /account: the account console (pages)


def register_error_handlers(app: Flask) -> None:
    # Registered after the Api so that ours replace flask-smorest's JSON handler.
    _register_error_handlers(app)


def register_commands(app: Flask) -> None:
    """Project CLI commands (``flask db`` comes from Flask-Migrate)."""
    commands.register(app)
