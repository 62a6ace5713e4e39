"""Configuration: environment handling and production's refusal to run unsafely."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from cryptography.fernet import Fernet

from myapp import config as config_module
from myapp import create_app
from myapp.config import (
    SECRET_KEY_FILE,
    ConfigurationError,
    DevelopmentConfig,
    ProductionConfig,
    normalise_database_url,
    resolve_config,
)
from myapp.extensions import db
from myapp.signing_keys import new_key_set

STRONG = "s" * 32
ENCRYPTION_KEY = Fernet.generate_key().decode()
PRODUCTION_ENV = {
    "SECRET_KEY": STRONG,
    "JWT_SECRET_KEY": "j" * 32,
    "DATABASE_URL": "sqlite://",
    "ENCRYPTION_KEY": ENCRYPTION_KEY,
}


PRODUCTION_SETTINGS = {"APP_BASE_URL": "https://accounts.example.com"}


# Development's argon2 parameters cost a fifth of a second per app (its dummy
# hash); these tests are about configuration, so they hash cheaply.
CHEAP_HASHING = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 16}


def dev_app(instance, env=None, config=None):
    """A development app (or ``config``) with its instance folder in ``instance``."""
    chosen = config if config is not None else DevelopmentConfig(env or {})
    return create_app(chosen, overrides=CHEAP_HASHING, instance_path=str(instance))


def production_app(env, **overrides):
    env = dict(env)
    # The encryption key reaches the app as MYAPP_ENCRYPTION_KEY would: an override.
    settings = {**PRODUCTION_SETTINGS, "ENCRYPTION_KEY": env.pop("ENCRYPTION_KEY", None)}
    return create_app(ProductionConfig(env), overrides={**settings, **overrides})


class TestProductionConfig:
    def test_create_app_when_production_env_complete_starts(self):
        app = production_app(PRODUCTION_ENV)

        assert app.config["CONFIG_NAME"] == "production"
        assert app.config["JWT_SECRET_KEY"] == "j" * 32

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"SECRET_KEY": None}, "SECRET_KEY is missing"),
            (
                {"SECRET_KEY": None, "JWT_SECRET_KEY": None},
                "SECRET_KEY is missing; JWT_SECRET_KEY is missing",
            ),
            ({"JWT_SECRET_KEY": "j" * 31}, "JWT_SECRET_KEY must be at least 32 bytes"),
            ({"DATABASE_URL": None}, "DATABASE_URL is not set"),
            (
                {"ENCRYPTION_KEY": None},
                "ENCRYPTION_KEY is missing (flask generate-encryption-key makes one)",
            ),
        ],
        ids=["no-secret", "no-jwt-secret", "short-jwt-secret", "no-database", "no-encryption-key"],
    )
    def test_create_app_when_production_env_unsafe_refuses_to_start(self, change, message):
        env = {k: v for k, v in {**PRODUCTION_ENV, **change}.items() if v is not None}
        # Given through the config class's environment only (as ENCRYPTION_KEY is
        # read by Flask's MYAPP_ prefix in real deployments, below).
        overrides = {"ENCRYPTION_KEY": env.pop("ENCRYPTION_KEY", None)}

        with pytest.raises(ConfigurationError) as refused:
            production_app(env, **overrides)

        assert str(refused.value) == f"Refusing to start: {message}"

    def test_create_app_when_production_gets_everything_wrong_names_every_problem(self):
        env = {"JWT_SECRET_KEY": "é" * 15}  # 30 bytes in UTF-8, though 15 characters

        with pytest.raises(ConfigurationError) as refused:
            create_app(
                ProductionConfig(env),
                overrides={
                    "ARGON2_TIME_COST": 1,
                    "RATELIMIT_STORAGE_URI": "memory://",
                    "APP_BASE_URL": "http://accounts.example.com",
                    "MAIL_EAGER": True,
                    "EMAIL_BACKEND": "console",
                    "OIDC_PROVIDERS": {
                        "plain": {
                            "issuer": "http://id.example",
                            "client_id": "a",
                            "client_secret": "b",
                        },
                        "fine": {
                            "issuer": "https://id.example",
                            "client_id": "a",
                            "client_secret": "b",
                        },
                    },
                },
            )

        assert str(refused.value).split("; ") == [
            "Refusing to start: DATABASE_URL is not set",
            "SECRET_KEY is missing",
            "JWT_SECRET_KEY must be at least 32 bytes",
            "argon2 parameters are below the OWASP floor (m=19 MiB, t=2)",
            "RATELIMIT_STORAGE_URI must be shared storage (redis://...)",
            "APP_BASE_URL must be the public https:// address (used in emails)",
            "ENCRYPTION_KEY is missing (flask generate-encryption-key makes one)",
            "MAIL_EAGER must be false (run flask mail-worker)",
            "EMAIL_BACKEND must be smtp (console and memory send no mail)",
            "WEBAUTHN_ORIGINS: http://accounts.example.com is not an https origin "
            "under accounts.example.com",
            "OIDC_PROVIDERS: plain's issuer must be https",
        ]

    def test_create_app_when_production_also_has_a_zero_lifetime_names_both(self):
        with pytest.raises(ConfigurationError) as refused:
            production_app(PRODUCTION_ENV, MFA_TOKEN_EXPIRES=0, EMAIL_BACKEND="memory")

        assert str(refused.value) == (
            "Refusing to start: MFA_TOKEN_EXPIRES must be a positive number (got 0); "
            "EMAIL_BACKEND must be smtp (console and memory send no mail)"
        )

    def test_create_app_when_asymmetric_without_keys_names_the_algorithm(self):
        with pytest.raises(ConfigurationError) as refused:
            production_app(PRODUCTION_ENV, JWT_ALGORITHM="RS256")

        assert str(refused.value) == (
            "Refusing to start: JWT_PRIVATE_KEYS is missing for RS256 "
            "(flask keys generate makes a key set)"
        )

    def test_create_app_when_argon2_exactly_at_the_owasp_floor_starts(self):
        app = production_app(PRODUCTION_ENV, ARGON2_MEMORY_COST=19 * 1024, ARGON2_TIME_COST=2)

        assert (app.config["ARGON2_MEMORY_COST"], app.config["ARGON2_TIME_COST"]) == (19456, 2)

    @pytest.mark.parametrize(
        "settings",
        [
            {"ARGON2_MEMORY_COST": 19 * 1024 - 1, "ARGON2_TIME_COST": 2},
            {"ARGON2_MEMORY_COST": 19 * 1024, "ARGON2_TIME_COST": 1},
        ],
        ids=["memory-under", "time-under"],
    )
    def test_create_app_when_argon2_one_under_the_floor_refuses(self, settings):
        with pytest.raises(ConfigurationError, match="below the OWASP floor"):
            production_app(PRODUCTION_ENV, **settings)

    def test_create_app_when_jwt_secret_is_exactly_32_bytes_starts(self):
        env = {**PRODUCTION_ENV, "JWT_SECRET_KEY": "é" * 16}  # 32 bytes in UTF-8

        assert production_app(env).config["JWT_SECRET_KEY"] == "é" * 16

    def test_create_app_when_production_argon2_below_owasp_floor_refuses(self):
        with pytest.raises(ConfigurationError, match="OWASP"):
            production_app(PRODUCTION_ENV, ARGON2_MEMORY_COST=1024)

    @pytest.mark.parametrize("base_url", ["http://accounts.example.com", ""])
    def test_create_app_when_production_base_url_not_https_refuses(self, base_url):
        with pytest.raises(ConfigurationError, match="APP_BASE_URL"):
            production_app(PRODUCTION_ENV, APP_BASE_URL=base_url)

    @pytest.mark.parametrize("backend", ["console", "memory"])
    def test_create_app_when_production_email_goes_nowhere_refuses_naming_it(self, backend):
        with pytest.raises(ConfigurationError, match="EMAIL_BACKEND must be smtp"):
            production_app(PRODUCTION_ENV, EMAIL_BACKEND=backend)

    def test_production_defaults_when_read_send_real_mail_from_a_worker(self):
        config = production_app(PRODUCTION_ENV).config

        assert (config["EMAIL_BACKEND"], config["MAIL_EAGER"]) == ("smtp", False)

    def test_create_app_when_production_delivers_eagerly_refuses_naming_it(self):
        # Eager delivery talks SMTP from the request: slow, and a timing oracle.
        with pytest.raises(ConfigurationError, match="MAIL_EAGER must be false"):
            production_app(PRODUCTION_ENV, MAIL_EAGER=True)

    @pytest.mark.parametrize("name", ["development", "testing"])
    def test_development_and_testing_when_created_deliver_eagerly(self, name, tmp_path):
        assert dev_app(tmp_path, config=name).config["MAIL_EAGER"] is True

    def test_production_when_process_environment_has_no_database_never_falls_back_to_sqlite(
        self, monkeypatch
    ):
        monkeypatch.delenv("DATABASE_URL", raising=False)

        assert ProductionConfig().SQLALCHEMY_DATABASE_URI is None

    def test_production_when_process_environment_names_a_database_uses_it(self, monkeypatch):
        monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/app")

        uri = ProductionConfig().SQLALCHEMY_DATABASE_URI

        assert uri == "postgresql+psycopg://u@db.example/app"

    def test_production_defaults_when_read_meet_owasp_floor(self):
        config = ProductionConfig(PRODUCTION_ENV)

        assert config.ARGON2_MEMORY_COST >= 19 * 1024
        assert config.ARGON2_TIME_COST >= 2
        assert config.ARGON2_PARALLELISM == 1


class TestEncryptionKey:
    """The key TOTP secrets are encrypted with (myapp.crypto)."""

    def test_development_when_no_key_derives_one_from_the_secret_key_stable_across_restarts(
        self, tmp_path
    ):
        first = dev_app(tmp_path, {}).config
        again = dev_app(tmp_path, {}).config

        assert first["ENCRYPTION_KEY"] == again["ENCRYPTION_KEY"]
        assert first["ENCRYPTION_KEY"] not in (first["SECRET_KEY"], "")
        Fernet(first["ENCRYPTION_KEY"])  # a usable key

    def test_production_when_key_given_uses_it_not_a_derived_one(self):
        assert production_app(PRODUCTION_ENV).config["ENCRYPTION_KEY"] == ENCRYPTION_KEY

    @pytest.mark.parametrize("config", ["development", "production"])
    @pytest.mark.parametrize(
        ("bad", "position"),
        [("not-a-key", "key 1"), (f"{ENCRYPTION_KEY},short", "key 2")],
        ids=["malformed", "second-malformed"],
    )
    def test_create_app_when_a_key_is_malformed_refuses_naming_its_position(
        self, config, bad, position, tmp_path
    ):
        with pytest.raises(ConfigurationError, match=f"ENCRYPTION_KEY: {position} is not"):
            if config == "production":
                production_app(PRODUCTION_ENV, ENCRYPTION_KEY=bad)
            else:
                create_app(
                    DevelopmentConfig({"SECRET_KEY": STRONG}),
                    overrides={**CHEAP_HASHING, "ENCRYPTION_KEY": bad},
                    instance_path=str(tmp_path),
                )


class TestSecretKey:
    """No secret is ever in the source: each environment gets one of its own."""

    def test_development_when_no_secret_generates_one_kept_in_the_instance_folder(
        self, tmp_path, caplog
    ):
        with mock.patch("myapp.config.tempfile.mkstemp", wraps=tempfile.mkstemp) as mkstemp:
            app = dev_app(tmp_path, {})

        key_file = tmp_path / SECRET_KEY_FILE
        assert key_file.read_text() == app.config["SECRET_KEY"]
        assert len(app.config["SECRET_KEY"]) == 64  # 48 random bytes, base64url
        # The draft is hard-linked into place, which works only on one file system.
        assert mkstemp.call_args.kwargs == {"dir": str(tmp_path)}
        assert sorted(path.name for path in tmp_path.iterdir()) == [SECRET_KEY_FILE]
        assert key_file.stat().st_mode & 0o777 == 0o600  # readable by the owner only
        assert app.config["JWT_SECRET_KEY"] == app.config["SECRET_KEY"]
        assert [r.getMessage() for r in caplog.records if "SECRET_KEY" in r.getMessage()] == [
            f"No SECRET_KEY set: generated one in {key_file} (kept for restarts). "
            "Set SECRET_KEY to choose your own."
        ]

    def test_development_when_restarted_keeps_its_secret_and_says_nothing(self, tmp_path, caplog):
        first = dev_app(tmp_path, {})
        caplog.clear()

        again = dev_app(tmp_path, {})

        assert again.config["SECRET_KEY"] == first.config["SECRET_KEY"]
        assert not [r for r in caplog.records if "SECRET_KEY" in r.getMessage()]

    def test_development_when_secret_given_uses_it_and_writes_nothing(self, tmp_path):
        app = dev_app(tmp_path, {"SECRET_KEY": STRONG})

        assert app.config["SECRET_KEY"] == STRONG
        assert not (tmp_path / SECRET_KEY_FILE).exists()

    def test_two_instances_when_generating_keep_their_own_secrets(self, tmp_path):
        one = dev_app(tmp_path / "one", {})
        two = dev_app(tmp_path / "two", {})

        assert one.config["SECRET_KEY"] != two.config["SECRET_KEY"]

    def test_testing_when_created_uses_a_random_key_of_this_process(self):
        key = create_app("testing").config["JWT_SECRET_KEY"]

        assert key == create_app("testing").config["JWT_SECRET_KEY"]  # one per process
        assert len(key) >= 43
        assert key not in Path(config_module.__file__).read_text()  # not in the source

    def test_testing_when_secret_given_uses_it_so_processes_can_share_one(self):
        config = config_module.TestingConfig({"SECRET_KEY": STRONG})

        assert (config.SECRET_KEY, config.JWT_SECRET_KEY) == (STRONG, STRONG)

    def test_testing_when_jwt_secret_given_signs_with_it_not_the_secret_key(self):
        config = config_module.TestingConfig({"SECRET_KEY": STRONG, "JWT_SECRET_KEY": "j" * 32})

        assert (config.SECRET_KEY, config.JWT_SECRET_KEY) == (STRONG, "j" * 32)

    def test_source_when_read_holds_no_literal_secret_assignment(self):
        # What the hole was: SECRET_KEY = "<a constant>" anywhere in the package.
        package = Path(config_module.__file__).parent
        assignments = [
            f"{path.name}: {line.strip()}"
            for path in package.rglob("*.py")
            for line in path.read_text().splitlines()
            if re.match(r"\s*(self\.)?(JWT_)?SECRET_KEY\s*=\s*[\"']", line)
        ]

        assert assignments == []


class TestEnvironment:
    def test_prefixed_env_when_set_overrides_config_as_json(self, monkeypatch):
        monkeypatch.setenv("MYAPP_JWT_ACCESS_TOKEN_EXPIRES", "600")
        monkeypatch.setenv("MYAPP_API_TITLE", "renamed")

        app = create_app(config_module.TestingConfig)

        assert app.config["JWT_ACCESS_TOKEN_EXPIRES"] == timedelta(seconds=600)
        assert app.config["API_TITLE"] == "renamed"

    def test_lifetimes_when_not_set_are_fifteen_minutes_and_a_week(self):
        config = DevelopmentConfig({})

        assert timedelta(minutes=15) == config.JWT_ACCESS_TOKEN_EXPIRES
        assert timedelta(days=7) == config.JWT_REFRESH_TOKEN_EXPIRES

    def test_lifetimes_when_set_in_env_are_seconds(self):
        config = DevelopmentConfig(
            {"JWT_ACCESS_TOKEN_EXPIRES": "60", "JWT_REFRESH_TOKEN_EXPIRES": "120"}
        )

        assert timedelta(seconds=60) == config.JWT_ACCESS_TOKEN_EXPIRES
        assert timedelta(seconds=120) == config.JWT_REFRESH_TOKEN_EXPIRES

    def test_development_when_no_database_url_uses_sqlite_in_instance_folder(self, tmp_path):
        app = dev_app(tmp_path, {})

        with app.app_context():
            assert db.engine.url.get_backend_name() == "sqlite"
            assert db.engine.url.database.startswith(app.instance_path)

    def test_resolve_config_when_none_reads_myapp_config(self, monkeypatch):
        monkeypatch.setenv("MYAPP_CONFIG", "testing")

        assert isinstance(resolve_config(None), config_module.TestingConfig)

    def test_resolve_config_when_unset_defaults_to_development(self, monkeypatch):
        monkeypatch.delenv("MYAPP_CONFIG", raising=False)

        assert isinstance(resolve_config(None), DevelopmentConfig)

    def test_resolve_config_when_name_unknown_raises(self):
        with pytest.raises(ConfigurationError, match="Unknown configuration 'staging'"):
            resolve_config("staging")


JWT_LIFETIMES = {"JWT_ACCESS_TOKEN_EXPIRES", "JWT_REFRESH_TOKEN_EXPIRES"}


class TestPositiveSettings:
    """A lifetime, count or limit at zero or below refuses to start, in every
    environment: it would make every link, code or session dead on arrival."""

    @pytest.mark.parametrize("key", sorted(set(config_module.POSITIVE_SETTINGS) - JWT_LIFETIMES))
    @pytest.mark.parametrize("value", [0, -1, 0.0, "300", True, None])
    def test_create_app_when_not_a_positive_number_refuses_naming_it(self, key, value):
        with pytest.raises(ConfigurationError) as refused:
            create_app(config_module.TestingConfig, overrides={key: value})

        assert str(refused.value) == (
            f"Refusing to start: {key} must be a positive number (got {value!r})"
        )

    @pytest.mark.parametrize("key", sorted(JWT_LIFETIMES))
    @pytest.mark.parametrize(
        ("value", "stored"),
        [(0, timedelta(0)), (-1, timedelta(seconds=-1)), ("300", "300"), (True, True)],
    )
    def test_create_app_when_jwt_lifetime_not_positive_refuses_naming_it(self, key, value, stored):
        # Seconds become a timedelta before the check (flask-jwt-extended reads one).
        with pytest.raises(ConfigurationError) as refused:
            create_app(config_module.TestingConfig, overrides={key: value})

        assert str(refused.value) == (
            f"Refusing to start: {key} must be a positive number (got {stored!r})"
        )

    def test_create_app_when_several_are_wrong_names_each(self):
        with pytest.raises(ConfigurationError) as refused:
            create_app(
                config_module.TestingConfig, overrides={"MAIL_BATCH": 0, "MFA_TOKEN_EXPIRES": -5}
            )

        assert str(refused.value) == (
            "Refusing to start: MFA_TOKEN_EXPIRES must be a positive number (got -5); "
            "MAIL_BATCH must be a positive number (got 0)"
        )

    @pytest.mark.parametrize("key", ["JWT_ACCESS_TOKEN_EXPIRES", "JWT_REFRESH_TOKEN_EXPIRES"])
    def test_create_app_when_token_lifetime_in_env_is_zero_refuses(self, key):
        with pytest.raises(ConfigurationError, match=f"{key} must be a positive number"):
            create_app(config_module.TestingConfig({key: "0"}))

    @pytest.mark.parametrize("value", [1, 0.5, timedelta(seconds=1)])
    def test_create_app_when_just_above_zero_starts(self, value):
        app = create_app(config_module.TestingConfig, overrides={"MFA_TOKEN_EXPIRES": value})

        assert app.config["MFA_TOKEN_EXPIRES"] == value


class TestBaseUrl:
    @pytest.mark.parametrize(
        ("configured", "stored"),
        [
            ("https://accounts.example", "https://accounts.example"),
            ("https://accounts.example/", "https://accounts.example"),
            ("https://accounts.example//", "https://accounts.example"),
            # A path's own last character stays: only slashes are trimmed.
            ("https://example.com/appX/", "https://example.com/appX"),
        ],
    )
    def test_create_app_when_base_url_has_trailing_slashes_stores_it_without(
        self, configured, stored
    ):
        app = create_app(config_module.TestingConfig, overrides={"APP_BASE_URL": configured})

        assert app.config["APP_BASE_URL"] == stored


class TestNormaliseDatabaseUrl:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
            ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
            ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
            ("sqlite:///x.db", "sqlite:///x.db"),
        ],
    )
    def test_normalise_database_url_when_given_url_selects_psycopg3(self, given, expected):
        assert normalise_database_url(given) == expected


class TestCookieSettings:
    """Cookie transport's cookies: Secure exactly when the site is served over https."""

    def test_production_when_created_makes_cookies_secure_strict_and_scoped(self):
        config = production_app(PRODUCTION_ENV).config

        assert config["JWT_COOKIE_SECURE"] is True
        assert config["JWT_COOKIE_SAMESITE"] == "Strict"
        assert config["JWT_REFRESH_COOKIE_PATH"] == "/api/v1/auth"
        # Access tokens are never read from cookies.
        assert config["JWT_TOKEN_LOCATION"] == ["headers"]

    def test_development_when_served_over_http_does_not_mark_cookies_secure(self, tmp_path):
        # A Secure cookie over http would be dropped by the browser: nothing would work.
        assert dev_app(tmp_path, {}).config["JWT_COOKIE_SECURE"] is False


class TestRelyingParty:
    """Passkeys' relying party: from APP_BASE_URL unless configured; production
    refuses one that browsers would refuse, or that plain http could phish."""

    def test_production_when_not_configured_derives_it_from_the_base_url(self):
        config = production_app(PRODUCTION_ENV).config

        assert config["WEBAUTHN_RP_ID"] == "accounts.example.com"
        assert config["WEBAUTHN_ORIGINS"] == ["https://accounts.example.com"]

    def test_origins_when_given_comma_separated_become_a_list_as_browsers_write_them(self):
        config = production_app(
            PRODUCTION_ENV,
            WEBAUTHN_RP_ID="example.com",
            WEBAUTHN_ORIGINS="https://Accounts.Example.com, https://www.example.com/",
        ).config

        assert config["WEBAUTHN_ORIGINS"] == [
            "https://accounts.example.com",
            "https://www.example.com",
        ]

    @pytest.mark.parametrize(
        ("settings", "message"),
        [
            *(
                (
                    {"WEBAUTHN_RP_ID": rp_id},
                    # The default origin, APP_BASE_URL's, is then not under it either.
                    "WEBAUTHN_RP_ID must be APP_BASE_URL's host or a domain above it; "
                    "WEBAUTHN_ORIGINS: https://accounts.example.com is not an https origin "
                    f"under {rp_id}",
                )
                for rp_id in ("other.example", "ample.com")
            ),
            (
                {"WEBAUTHN_ORIGINS": ["http://accounts.example.com"]},
                "WEBAUTHN_ORIGINS: http://accounts.example.com is not an https origin "
                "under accounts.example.com",
            ),
            (
                {"WEBAUTHN_ORIGINS": ["https://evil.example"]},
                "WEBAUTHN_ORIGINS: https://evil.example is not an https origin "
                "under accounts.example.com",
            ),
        ],
        ids=["another-domain", "a-suffix-that-is-no-parent", "http-origin", "origin-elsewhere"],
    )
    def test_create_app_when_production_relying_party_unsafe_refuses_naming_it(
        self, settings, message
    ):
        with pytest.raises(ConfigurationError) as refused:
            production_app(PRODUCTION_ENV, **settings)

        assert str(refused.value) == f"Refusing to start: {message}"

    def test_production_when_rp_id_is_a_parent_domain_starts(self):
        config = production_app(PRODUCTION_ENV, WEBAUTHN_RP_ID="example.com").config

        assert config["WEBAUTHN_RP_ID"] == "example.com"


HTTPS_PROVIDER = {"issuer": "https://id.example.com", "client_id": "a", "client_secret": "b"}
HTTP_PROVIDERS = {
    "example": {**HTTPS_PROVIDER, "issuer": "http://id.example.com"},
    "fine": HTTPS_PROVIDER,
}


class TestOidcProviders:
    PROVIDER = HTTPS_PROVIDER

    def test_production_when_provider_issuer_is_https_starts(self):
        app = production_app(PRODUCTION_ENV, OIDC_PROVIDERS={"example": self.PROVIDER})

        assert app.config["OIDC_PROVIDERS"]["example"]["issuer"] == "https://id.example.com"

    @pytest.mark.parametrize(
        "providers", [HTTP_PROVIDERS, json.dumps(HTTP_PROVIDERS)], ids=["mapping", "json-text"]
    )
    def test_production_when_provider_issuer_is_http_refuses_naming_it(self, providers):
        with pytest.raises(ConfigurationError) as refused:
            production_app(PRODUCTION_ENV, OIDC_PROVIDERS=providers)

        assert str(refused.value) == (
            "Refusing to start: OIDC_PROVIDERS: example's issuer must be https"
        )

    def test_production_when_provider_list_is_empty_text_starts(self):
        app = production_app(PRODUCTION_ENV, OIDC_PROVIDERS="  ")

        assert app.config["CONFIG_NAME"] == "production"

    def test_create_app_when_provider_list_malformed_refuses_to_start(self, tmp_path):
        with pytest.raises(ConfigurationError, match="missing 'client_secret'"):
            create_app(
                DevelopmentConfig({}),
                overrides={
                    **CHEAP_HASHING,
                    "OIDC_PROVIDERS": {"x": {"issuer": "https://x", "client_id": "a"}},
                },
                instance_path=str(tmp_path),
            )


class TestSigningAlgorithm:
    def test_production_when_asymmetric_without_keys_refuses(self):
        with pytest.raises(ConfigurationError, match="JWT_PRIVATE_KEYS is missing for EdDSA"):
            production_app(PRODUCTION_ENV, JWT_ALGORITHM="EdDSA")

    def test_production_when_asymmetric_with_keys_needs_no_long_secret(self):
        env = {**PRODUCTION_ENV, "JWT_SECRET_KEY": "short"}
        keys = new_key_set("EdDSA").to_json()

        app = production_app(env, JWT_ALGORITHM="EdDSA", JWT_PRIVATE_KEYS=keys)

        assert app.config["JWT_DECODE_ALGORITHMS"] == ["EdDSA"]

    def test_create_app_when_algorithm_unknown_refuses_naming_the_choices(self):
        with pytest.raises(ConfigurationError, match="is not HS256, EdDSA or RS256"):
            production_app(PRODUCTION_ENV, JWT_ALGORITHM="none")

    def test_create_app_when_key_set_unreadable_refuses(self):
        with pytest.raises(ConfigurationError, match="not a PEM key or a JWK Set"):
            production_app(PRODUCTION_ENV, JWT_ALGORITHM="RS256", JWT_PRIVATE_KEYS="{nope")

    def test_development_when_asymmetric_without_keys_keeps_a_generated_set(self, tmp_path):
        first = dev_app(tmp_path, config=DevelopmentConfig({})).config
        assert first["JWT_PRIVATE_KEYS"] is None  # HS256 by default: no key set

        signed = create_app(
            DevelopmentConfig({}),
            overrides={**CHEAP_HASHING, "JWT_ALGORITHM": "EdDSA"},
            instance_path=str(tmp_path),
        ).config
        again = create_app(
            DevelopmentConfig({}),
            overrides={**CHEAP_HASHING, "JWT_ALGORITHM": "EdDSA"},
            instance_path=str(tmp_path),
        ).config

        assert signed["JWT_PRIVATE_KEYS"] == again["JWT_PRIVATE_KEYS"]
        assert Path(signed["JWT_PRIVATE_KEYS"]) == tmp_path / "jwt_keys_eddsa.json"

    @pytest.mark.parametrize(("algorithm", "kty"), [("EdDSA", "OKP"), ("RS256", "RSA")])
    def test_testing_when_asymmetric_without_keys_generates_a_set_of_that_algorithm(
        self, algorithm, kty
    ):
        app = create_app(config_module.TestingConfig, overrides={"JWT_ALGORITHM": algorithm})

        (key,) = json.loads(app.config["JWT_PRIVATE_KEYS"])["keys"]
        assert (key["kty"], key["alg"]) == (kty, algorithm)


class TestBehindPgBouncer:
    def test_pgbouncer_when_on_turns_off_server_side_prepared_statements(self):
        env = {**PRODUCTION_ENV, "DATABASE_URL": "postgresql://u@db.example/app"}

        config = production_app(env, DATABASE_PGBOUNCER=True).config

        # Transaction mode: a statement prepared on one server connection would be
        # missing (or taken) on the next; psycopg must not prepare any.
        assert config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] == {"prepare_threshold": None}

    def test_pgbouncer_when_engine_options_configured_keeps_them(self):
        env = {**PRODUCTION_ENV, "DATABASE_URL": "postgresql://u@db.example/app"}
        options = {"pool_size": 3, "connect_args": {"application_name": "myapp"}}

        config = production_app(
            env, DATABASE_PGBOUNCER=True, SQLALCHEMY_ENGINE_OPTIONS=options
        ).config

        assert config["SQLALCHEMY_ENGINE_OPTIONS"] == {
            "pool_size": 3,
            "connect_args": {"application_name": "myapp", "prepare_threshold": None},
        }
        assert options["connect_args"] == {"application_name": "myapp"}  # not changed in place

    def test_pgbouncer_when_off_leaves_the_driver_alone(self):
        config = production_app(PRODUCTION_ENV).config

        assert "connect_args" not in config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
