"""Configuration classes.

Each class is instantiated when the app is created, so it reads the
environment of that moment (tests can set variables before ``create_app``).
After the class, every ``MYAPP_<KEY>`` variable overrides ``<KEY>`` (values are
parsed as JSON when they can be, so ``MYAPP_JWT_ACCESS_TOKEN_EXPIRES=600`` is
an integer).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping, MutableMapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from myapp.crypto import EncryptionKeyError, derived_key, parse_keys
from myapp.signing_keys import ALGORITHMS as SIGNING_ALGORITHMS
from myapp.signing_keys import new_key_set, write_key_set

logger = logging.getLogger(__name__)

MIN_JWT_SECRET_BYTES = 32
# Where development keeps the secret it generated (in the instance folder).
SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
# Testing's secret: random, made once per process (apps of one test run agree).
_TESTING_SECRET = secrets.token_urlsafe(48)


class ConfigurationError(RuntimeError):
    """The configuration cannot run safely (raised by ``create_app``)."""


# Lifetimes, counts and limits that only make sense above zero: a zero or negative
# lifetime would make every link, code or session dead on arrival, with no error
# anywhere but in the users' faces.
POSITIVE_SETTINGS = (
    "JWT_ACCESS_TOKEN_EXPIRES",
    "JWT_REFRESH_TOKEN_EXPIRES",
    "SESSION_ABSOLUTE_LIFETIME",
    "PASSWORD_RESET_TOKEN_EXPIRES",
    "EMAIL_VERIFICATION_TOKEN_EXPIRES",
    "EMAIL_CHANGE_TOKEN_EXPIRES",
    "MFA_TOKEN_EXPIRES",
    "MFA_TOKEN_MAX_ATTEMPTS",
    "WEBAUTHN_CHALLENGE_EXPIRES",
    "PASSWORD_MIN_LENGTH",
    "SMTP_TIMEOUT",
    "MAIL_BATCH",
    "MAIL_LEASE_SECONDS",
    "MAIL_MAX_ATTEMPTS",
    "MAIL_RETRY_BASE_SECONDS",
    "MAIL_RETRY_MAX_SECONDS",
    "MAIL_KEEP_SENT_DAYS",
)


def is_positive(value: object) -> bool:
    """A number above zero (seconds as a number or a timedelta); not a bool."""
    if isinstance(value, timedelta):
        return value > timedelta(0)
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def provide_webauthn(config: MutableMapping[str, Any]) -> None:
    """Fill in the relying party from APP_BASE_URL where it is not configured, and
    turn a comma-separated origin list into a list of origins as browsers send them."""
    base = urlsplit(str(config["APP_BASE_URL"]))
    if not config.get("WEBAUTHN_RP_ID"):
        config["WEBAUTHN_RP_ID"] = base.hostname
    origins = config.get("WEBAUTHN_ORIGINS") or f"{base.scheme}://{base.netloc}"
    if isinstance(origins, str):
        origins = [origin.strip() for origin in origins.split(",") if origin.strip()]
    # As a browser writes an origin (lowercase, no "/"), which is compared exactly.
    config["WEBAUTHN_ORIGINS"] = [origin.lower().rstrip("/") for origin in origins]


def host_under(host: str | None, rp_id: str) -> bool:
    """Whether a page on ``host`` may use passkeys of ``rp_id`` (the same host, or
    one under it: WebAuthn's registrable-suffix rule)."""
    return host is not None and (host == rp_id or host.endswith("." + rp_id))


def webauthn_problems(config: Mapping[str, Any]) -> list[str]:
    """Production's rules for the relying party."""
    problems = []
    rp_id = str(config.get("WEBAUTHN_RP_ID"))
    if not host_under(urlsplit(str(config["APP_BASE_URL"])).hostname, rp_id):
        problems.append("WEBAUTHN_RP_ID must be APP_BASE_URL's host or a domain above it")
    for origin in config.get("WEBAUTHN_ORIGINS") or []:
        parts = urlsplit(origin)
        # A passkey used from plain http could be phished by anyone on the path.
        if parts.scheme != "https" or not host_under(parts.hostname, rp_id):
            problems.append(f"WEBAUTHN_ORIGINS: {origin} is not an https origin under {rp_id}")
    return problems


def normalise_database_url(url: str) -> str:
    """Point bare ``postgres://``/``postgresql://`` URLs at psycopg 3.

    Hosting platforms hand out ``postgres://`` URLs; SQLAlchemy would look for
    psycopg2, which this project does not install.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Config:
    """Settings shared by every environment."""

    NAME = "base"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        # No secret is ever written in the source: without SECRET_KEY each
        # environment provides one (provide_secret_key) or refuses to start.
        self.SECRET_KEY: str | None = env.get("SECRET_KEY")
        self.JWT_SECRET_KEY: str | None = env.get("JWT_SECRET_KEY")
        # A relative SQLite path is resolved inside the instance folder by Flask-SQLAlchemy.
        self.SQLALCHEMY_DATABASE_URI: str | None = normalise_database_url(
            env.get("DATABASE_URL", "sqlite:///myapp.db")
        )
        self.JWT_ACCESS_TOKEN_EXPIRES = timedelta(
            seconds=int(env.get("JWT_ACCESS_TOKEN_EXPIRES", 15 * 60))
        )
        # The idle lifetime of a session: a refresh token unused this long is dead.
        self.JWT_REFRESH_TOKEN_EXPIRES = timedelta(
            seconds=int(env.get("JWT_REFRESH_TOKEN_EXPIRES", 7 * 24 * 3600))
        )

    # -- HTTP -------------------------------------------------------------
    # Bodies larger than this are refused with 413 before anything parses them.
    MAX_CONTENT_LENGTH = 1024 * 1024

    # -- Database ---------------------------------------------------------
    # Pooled connections idle longer than this are checked (one round trip) before
    # use; busier ones are trusted. See database._ping_after_idle.
    DATABASE_PING_AFTER_IDLE_SECONDS = 1.0
    SQLALCHEMY_RECORD_QUERIES = False
    # True when PostgreSQL is reached through PgBouncer in transaction mode (before
    # 1.21, or without max_prepared_statements): psycopg's server-side prepared
    # statements would land on another server connection. See README Operations.
    DATABASE_PGBOUNCER = False

    # -- Sessions -----------------------------------------------------------
    # However often it is refreshed, a session ends this long after its login
    # (seconds); then only a new login helps. ASVS level 2: 12 hours.
    SESSION_ABSOLUTE_LIFETIME = 30 * 24 * 3600

    # -- JWT --------------------------------------------------------------
    # Algorithm pinned: a token that names another one (or "none") is rejected.
    # HS256 signs with JWT_SECRET_KEY (one service); EdDSA or RS256 sign with the
    # key set JWT_PRIVATE_KEYS, whose public keys other services fetch from
    # /.well-known/jwks.json (JWT_DECODE_ALGORITHMS follows JWT_ALGORITHM).
    JWT_ALGORITHM = "HS256"
    JWT_DECODE_ALGORITHMS = ["HS256"]
    # A JWK Set file path, or the set (or one PEM private key) itself; newest first.
    JWT_PRIVATE_KEYS: str | None = None
    # Access tokens only in the Authorization header, everywhere. Browsers may ask
    # for the refresh token in an httpOnly cookie instead of the body
    # (X-Token-Transport: cookie, myapp/auth/cookies.py); only the refresh and logout
    # views read it, and only with a CSRF token and a trusted Origin.
    JWT_TOKEN_LOCATION = ["headers"]
    JWT_REFRESH_COOKIE_NAME = "myapp_refresh"
    # Sent to the auth endpoints only, never to the rest of the API or the pages.
    JWT_REFRESH_COOKIE_PATH = "/api/v1/auth"
    # Strict: no other site's page, link or form can make the browser send it.
    JWT_COOKIE_SAMESITE = "Strict"
    JWT_SESSION_COOKIE = False
    JWT_COOKIE_CSRF_PROTECT = True
    JWT_CSRF_IN_COOKIES = True
    # Readable by the page (not httpOnly): it copies it into X-CSRF-Token.
    JWT_REFRESH_CSRF_COOKIE_NAME = "myapp_csrf"
    JWT_REFRESH_CSRF_COOKIE_PATH = "/"
    JWT_CSRF_HEADER_NAME = "X-CSRF-Token"
    # JWT_COOKIE_SECURE follows APP_BASE_URL (https: Secure), set by create_app.
    JWT_ENCODE_ISSUER = "myapp"
    JWT_DECODE_ISSUER = "myapp"
    JWT_ENCODE_AUDIENCE = "myapp-api"
    JWT_DECODE_AUDIENCE = "myapp-api"
    JWT_ERROR_MESSAGE_KEY = "detail"

    # -- Password hashing (argon2id) --------------------------------------
    # OWASP floor is m=19 MiB, t=2, p=1; we default above it.
    ARGON2_TIME_COST = 3
    ARGON2_MEMORY_COST = 64 * 1024  # KiB
    ARGON2_PARALLELISM = 1
    PASSWORD_MIN_LENGTH = 12
    PASSWORD_MAX_LENGTH = 128

    # -- Email ------------------------------------------------------------
    EMAIL_BACKEND = "console"  # console | smtp | memory
    EMAIL_SENDER = "myapp <no-reply@localhost>"
    SMTP_HOST = "localhost"
    SMTP_PORT = 587
    SMTP_STARTTLS = True
    SMTP_SSL = False
    SMTP_USERNAME = None
    SMTP_PASSWORD = None
    SMTP_TIMEOUT = 10

    # -- Outbox (every email is a row first; flask mail-worker delivers) -----
    # Deliver right after each commit, in-process: development needs no worker.
    MAIL_EAGER = True
    MAIL_BATCH = 50  # messages a worker claims at a time
    MAIL_LEASE_SECONDS = 60  # a claim not finished by then is retried by another worker
    MAIL_MAX_ATTEMPTS = 8  # then the message is marked failed (flask mail-outbox retry)
    MAIL_RETRY_BASE_SECONDS = 30  # backoff: 30 s, 1 min, 2 min, ... up to the maximum
    MAIL_RETRY_MAX_SECONDS = 3600
    MAIL_KEEP_SENT_DAYS = 7  # sent (and skipped) messages: flask prune-tokens deletes them after

    # -- Account tokens (password reset, email verification) ---------------
    # Links in emails are built from this, never from the request's Host header
    # (which an attacker controls: reset-link poisoning).
    APP_BASE_URL = "http://127.0.0.1:5000"
    PASSWORD_RESET_TOKEN_EXPIRES = 30 * 60  # seconds
    EMAIL_VERIFICATION_TOKEN_EXPIRES = 24 * 3600  # seconds
    EMAIL_CHANGE_TOKEN_EXPIRES = 24 * 3600  # seconds: the link that proves a new address

    # -- Two-factor sign-in (TOTP) ------------------------------------------
    # The Fernet key(s) TOTP secrets are encrypted with, comma-separated, newest
    # first (myapp.crypto). Development and testing derive one from SECRET_KEY;
    # production must set its own.
    ENCRYPTION_KEY: str | None = None
    MFA_ISSUER = "myapp"  # the name authenticator apps show next to the code
    MFA_TOKEN_EXPIRES = 300  # seconds between the password step and the code step
    MFA_TOKEN_MAX_ATTEMPTS = 5  # wrong codes after which an mfa_token is dead
    # Administrators without a second factor get 403 on admin endpoints (until they
    # enrol). Off by default so that a new deployment's first admin can sign in;
    # production deployments should turn it on.
    MFA_REQUIRED_FOR_ADMINS = False

    # -- Passkeys (WebAuthn) -------------------------------------------------
    # The relying party passkeys are bound to: a browser only offers a passkey to
    # pages whose host is the RP ID or under it. None: APP_BASE_URL's host.
    WEBAUTHN_RP_ID: str | None = None
    WEBAUTHN_RP_NAME = "myapp"  # what the browser's passkey dialog shows
    # Origins whose pages may use the passkeys (a JSON list, or comma-separated).
    # None: APP_BASE_URL's origin alone.
    WEBAUTHN_ORIGINS: list[str] | str | None = None
    WEBAUTHN_CHALLENGE_EXPIRES = 300  # seconds a ceremony's challenge stays usable

    # -- Sign-in with OpenID Providers ------------------------------------------
    # {"name": {"issuer", "client_id", "client_secret", "scopes"?, "label"?}}: see the
    # README. None configured: only the (empty) provider list is served.
    OIDC_PROVIDERS: dict[str, dict[str, Any]] | str = {}

    # -- Rate limits (Flask-Limiter) ----------------------------------------
    # Set in every config on purpose: limits are on unless a config says otherwise.
    RATELIMIT_ENABLED = True
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_STRATEGY = "fixed-window"
    RATELIMIT_HEADERS_ENABLED = True  # X-RateLimit-* and Retry-After
    RATELIMIT_KEY_PREFIX = "myapp"
    RATELIMIT_LOGIN = "10 per minute"  # per client IP
    # Wrong passwords checked per account, whichever identifier is typed and however
    # many guesses race (spent before each check, given back on success).
    RATELIMIT_LOGIN_FAILURES = "10 per hour"
    RATELIMIT_REGISTER = "10 per hour"  # per client IP
    # (S105: these are rates, not passwords)
    RATELIMIT_PASSWORD_RESET = "5 per hour"  # noqa: S105 - per client IP
    RATELIMIT_REFRESH = "60 per minute"  # per client IP
    # Per user (access token), below:
    RATELIMIT_PASSWORD_CHECK = "10 per hour"  # noqa: S105 - DELETE /me, PUT /me/password
    RATELIMIT_VERIFY_RESEND = "3 per hour"  # POST /auth/verify-email/resend
    RATELIMIT_PROFILE_UPDATE = "30 per hour"  # PATCH /users/me
    RATELIMIT_EMAIL_CONFIRM = "30 per hour"  # per IP: POST /users/me/email/confirm
    # Wrong second-factor codes per account (each is a guess at a 6-digit secret),
    # shared by every endpoint that takes one; spent before each check.
    RATELIMIT_MFA_FAILURES = "10 per hour"
    # Per user: new TOTP secrets and new recovery-code sets (each writes rows).
    RATELIMIT_MFA_CHANGES = "10 per hour"
    # Number of reverse proxies in front of the app whose X-Forwarded-For is
    # trusted; 0 (default) trusts none, so the header cannot fake a client IP.
    PROXY_FIX_X_FOR = 0

    # -- Observability and browser security --------------------------------
    LOG_FORMAT = "json"  # json | text (Flask's default handler)
    LOG_LEVEL = "INFO"
    # Origins allowed to call the API from a browser (CORS); none by default.
    CORS_ORIGINS: list[str] = []
    HSTS_ENABLED = False

    # -- OpenAPI (flask-smorest) ------------------------------------------
    API_TITLE = "myapp"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.1.0"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "api/openapi.json"

    def provide_secret_key(self, config: MutableMapping[str, Any], instance_path: str) -> None:
        """Fill in ``SECRET_KEY`` when none was configured (each environment its way);
        the JWT secret defaults to it."""
        if not config.get("JWT_SECRET_KEY"):
            config["JWT_SECRET_KEY"] = config.get("SECRET_KEY")
        secret = config.get("SECRET_KEY")
        if not config.get("ENCRYPTION_KEY") and self.DERIVE_ENCRYPTION_KEY and secret:
            config["ENCRYPTION_KEY"] = derived_key(secret)

    # Outside production, a missing ENCRYPTION_KEY is derived from SECRET_KEY.
    DERIVE_ENCRYPTION_KEY = True

    def provide_signing_keys(self, config: MutableMapping[str, Any], instance_path: str) -> None:
        """An asymmetric JWT_ALGORITHM without JWT_PRIVATE_KEYS: outside production, a
        key set of this process (development keeps one in the instance folder)."""
        algorithm = config["JWT_ALGORITHM"]
        if algorithm not in ("HS256", *SIGNING_ALGORITHMS):
            raise ConfigurationError(
                f"Refusing to start: JWT_ALGORITHM {algorithm!r} is not HS256, EdDSA or RS256"
            )
        # A token naming another algorithm (or "none") is refused.
        config["JWT_DECODE_ALGORITHMS"] = [algorithm]
        if algorithm != "HS256" and not config.get("JWT_PRIVATE_KEYS") and self.GENERATE_KEYS:
            config["JWT_PRIVATE_KEYS"] = self.generated_keys(algorithm, instance_path)

    GENERATE_KEYS = True

    def generated_keys(self, algorithm: str, instance_path: str) -> str:
        return new_key_set(algorithm).to_json()

    def validate(self, config: Mapping[str, Any]) -> None:
        """Check the final configuration (after environment overrides): every
        problem at once, so that an operator fixes them in one go."""
        if config.get("ENCRYPTION_KEY"):
            try:
                parse_keys(config["ENCRYPTION_KEY"])
            except EncryptionKeyError as error:
                raise ConfigurationError(f"Refusing to start: {error}") from None
        problems = self.problems(config)
        if problems:
            raise ConfigurationError("Refusing to start: " + "; ".join(problems))

    def problems(self, config: Mapping[str, Any]) -> list[str]:
        """What every environment refuses; production adds its own rules."""
        return [
            f"{key} must be a positive number (got {config.get(key)!r})"
            for key in POSITIVE_SETTINGS
            if not is_positive(config.get(key))
        ]


class DevelopmentConfig(Config):
    NAME = "development"
    DEBUG = False  # `flask run --debug` turns on the debugger deliberately.

    def provide_secret_key(self, config: MutableMapping[str, Any], instance_path: str) -> None:
        # A key of this instance's own, kept in the instance folder so that
        # restarts keep their sessions; never one from the source, which anyone
        # could read and forge tokens with.
        if not config.get("SECRET_KEY"):
            config["SECRET_KEY"] = instance_secret_key(instance_path)
        super().provide_secret_key(config, instance_path)

    def generated_keys(self, algorithm: str, instance_path: str) -> str:
        # Kept for restarts, like the secret key: sessions survive them.
        path = Path(instance_path) / f"jwt_keys_{algorithm.lower()}.json"
        if not path.exists():
            os.makedirs(instance_path, exist_ok=True)
            write_key_set(path, new_key_set(algorithm))
        return str(path)


class TestingConfig(Config):
    NAME = "testing"
    TESTING = True

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(environ)
        env = os.environ if environ is None else environ
        # Random per process unless given (several server processes of one test must
        # share theirs): nothing a test token is signed with is ever published.
        self.SECRET_KEY = env.get("SECRET_KEY") or _TESTING_SECRET
        self.JWT_SECRET_KEY = env.get("JWT_SECRET_KEY") or self.SECRET_KEY
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(
            env.get("TEST_DATABASE_URL", "sqlite://")
        )

    EMAIL_BACKEND = "memory"
    LOG_LEVEL = "WARNING"  # quiet test output; tests that read logs set their own level

    # Cheapest argon2id parameters: same code path, ~1000x faster tests.
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 16  # KiB; differs from `seed-users --fast-hash` (8) on purpose
    ARGON2_PARALLELISM = 1


class ProductionConfig(Config):
    NAME = "production"
    # Real mail: the console backend would write live reset links to the log.
    EMAIL_BACKEND = "smtp"
    # Workers deliver (flask mail-worker): requests never talk to the SMTP relay.
    MAIL_EAGER = False
    # Served over HTTPS only (APP_BASE_URL must be https): tell browsers to stick to it.
    HSTS_ENABLED = True
    # Counters shared by every process behind the load balancer.
    RATELIMIT_STORAGE_URI = "redis://127.0.0.1:6379"
    # Its own key: SECRET_KEY and the key of the data at rest are rotated apart.
    DERIVE_ENCRYPTION_KEY = False
    # Its own key set, shared by every process (flask keys generate).
    GENERATE_KEYS = False

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(environ)
        env = os.environ if environ is None else environ
        if "DATABASE_URL" not in env:
            # Never fall back to a local SQLite file in production: it would look fine
            # until the second instance behind the load balancer disagrees with the first.
            self.SQLALCHEMY_DATABASE_URI = None

    def problems(self, config: Mapping[str, Any]) -> list[str]:
        problems = super().problems(config)
        if not config.get("SQLALCHEMY_DATABASE_URI"):
            problems.append("DATABASE_URL is not set")
        if not config.get("SECRET_KEY"):
            problems.append("SECRET_KEY is missing")
        jwt_secret = config.get("JWT_SECRET_KEY")
        if config.get("JWT_ALGORITHM") == "HS256":  # else the key set signs, not the secret
            if not jwt_secret:
                problems.append("JWT_SECRET_KEY is missing")
            elif len(str(jwt_secret).encode()) < MIN_JWT_SECRET_BYTES:
                # HS256 with a short key is brute-forceable offline from any issued token.
                problems.append(f"JWT_SECRET_KEY must be at least {MIN_JWT_SECRET_BYTES} bytes")
        if int(config["ARGON2_MEMORY_COST"]) < 19 * 1024 or int(config["ARGON2_TIME_COST"]) < 2:
            problems.append("argon2 parameters are below the OWASP floor (m=19 MiB, t=2)")
        if str(config["RATELIMIT_STORAGE_URI"]).startswith("memory://"):
            problems.append("RATELIMIT_STORAGE_URI must be shared storage (redis://...)")
        if not str(config["APP_BASE_URL"]).startswith("https://"):
            problems.append("APP_BASE_URL must be the public https:// address (used in emails)")
        if config.get("JWT_ALGORITHM") != "HS256" and not config.get("JWT_PRIVATE_KEYS"):
            problems.append(
                f"JWT_PRIVATE_KEYS is missing for {config.get('JWT_ALGORITHM')} "
                "(flask keys generate makes a key set)"
            )
        if not config.get("ENCRYPTION_KEY"):
            problems.append("ENCRYPTION_KEY is missing (flask generate-encryption-key makes one)")
        if config.get("MAIL_EAGER"):
            # Eager delivery sends from the request: a slow relay slows requests,
            # and the time a reset request takes would tell whether the account exists.
            problems.append("MAIL_EAGER must be false (run flask mail-worker)")
        if config.get("EMAIL_BACKEND") != "smtp":
            # console writes live reset links to the log; memory sends nothing.
            problems.append("EMAIL_BACKEND must be smtp (console and memory send no mail)")
        problems.extend(webauthn_problems(config))
        providers = config["OIDC_PROVIDERS"]
        if isinstance(providers, str):  # JSON text: create_app has parsed it once already
            providers = json.loads(providers) if providers.strip() else {}
        for name, entry in providers.items():
            # Discovery, keys and tokens over plain http could be swapped on the way.
            if not str(entry["issuer"]).startswith("https://"):
                problems.append(f"OIDC_PROVIDERS: {name}'s issuer must be https")
        return problems


CONFIGS: dict[str, type[Config]] = {
    cls.NAME: cls for cls in (DevelopmentConfig, TestingConfig, ProductionConfig)
}


def resolve_config(config: str | type[Config] | Config | None) -> Config:
    """Turn ``create_app``'s argument into a config object.

    ``None`` means the ``MYAPP_CONFIG`` environment variable, default development.
    """
    if config is None:
        config = os.environ.get("MYAPP_CONFIG", "development")
    if isinstance(config, str):
        try:
            config = CONFIGS[config]
        except KeyError:
            raise ConfigurationError(
                f"Unknown configuration {config!r}; choose one of {sorted(CONFIGS)}"
            ) from None
    if isinstance(config, type):
        config = config()
    return config


def instance_secret_key(instance_path: str) -> str:
    """This instance's generated secret: read from the instance folder, or made
    there (mode 0600) on first start. Processes starting at once agree: the file
    appears whole or not at all (a hard link), and the first to link it wins."""
    path = os.path.join(instance_path, SECRET_KEY_FILE)
    if not os.path.exists(path):
        os.makedirs(instance_path, exist_ok=True)
        descriptor, draft = tempfile.mkstemp(dir=instance_path)  # mode 0600
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(48))
            os.link(draft, path)
            logger.warning(
                "No SECRET_KEY set: generated one in %s (kept for restarts). "
                "Set SECRET_KEY to choose your own.",
                path,
            )
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            os.unlink(draft)
    with open(path) as file:
        return file.read().strip()
