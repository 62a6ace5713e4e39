"""Two real server processes (gunicorn) sharing PostgreSQL and Redis agree on
everything: revocations, refresh-token reuse and rate-limit counters."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid

import jwt as pyjwt
import pytest
import redis
from limits import parse
from sqlalchemy.engine import make_url

from bench.common import Gunicorn, PgBouncer
from myapp import config as app_config
from myapp.signing_keys import new_key_set, write_key_set
from tests.conftest import requires_postgresql
from tests.support.committed import LOGIN, USER, app_on, own_database

pytestmark = requires_postgresql

REDIS_URL = "redis://127.0.0.1:6379"


@pytest.fixture
def servers():
    with own_database("multiprocess") as database, app_on(database.uri):
        yield from _servers(database)


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "jwks.json"
    write_key_set(path, new_key_set("EdDSA"))
    return path


@pytest.fixture
def signed_servers(key_file):
    """Two processes signing with one EdDSA key set file, as production's would."""
    signed = {"MYAPP_JWT_ALGORITHM": "EdDSA", "MYAPP_JWT_PRIVATE_KEYS": str(key_file)}
    with own_database("multiprocess") as database, app_on(database.uri):
        yield from _servers(database, signed)


@pytest.fixture
def bounced_servers():
    """Two processes reaching PostgreSQL through PgBouncer in transaction mode."""
    with own_database("multiprocess") as database, app_on(database.uri):
        bouncer = PgBouncer(pool_size=1)  # every client shares one server connection
        try:
            through = {
                "TEST_DATABASE_URL": bouncer.url(make_url(database.uri).database),
                "MYAPP_DATABASE_PGBOUNCER": "true",
            }
            yield from _servers(database, through)
        finally:
            bouncer.stop()


def _servers(database, extra_env=None):
    prefix = f"myapp-multiprocess-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "MYAPP_CONFIG": "testing",
        # One key for both, as production's processes share theirs: a token from
        # one must be checked by the other.
        "SECRET_KEY": secrets.token_urlsafe(32),
        "TEST_DATABASE_URL": database.uri,
        "MYAPP_RATELIMIT_STORAGE_URI": REDIS_URL,
        "MYAPP_RATELIMIT_KEY_PREFIX": prefix,
        "MYAPP_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    started = []
    try:
        for _ in range(2):
            started.append(Gunicorn(env))
        for server in started:
            server.wait_until_up()
        yield started
    finally:
        for server in started:  # always stopped, whatever happened
            server.stop()
        keys = list(redis.Redis.from_url(REDIS_URL).scan_iter(match=f"*{prefix}*"))
        if keys:
            redis.Redis.from_url(REDIS_URL).delete(*keys)


def login(server) -> dict:
    status, tokens = server.call("POST", "/api/v1/auth/login", LOGIN)
    assert status == 200, tokens
    return tokens


def kid(token: str) -> str:
    return pyjwt.get_unverified_header(token)["kid"]


class TestKeyRotationAcrossProcesses:
    def test_rotation_when_run_while_two_processes_serve_needs_no_restart(
        self, signed_servers, key_file
    ):
        a, b = signed_servers
        assert a.call("POST", "/api/v1/auth/register", USER)[0] == 201
        before = login(a)
        assert b.call("GET", "/api/v1/users/me", token=before["access_token"])[0] == 200

        # The operator rotates with the CLI, against the file both processes read.
        rotate = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "myapp", "keys", "rotate"],
            env=signed_servers_env(key_file),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rotate.returncode == 0, rotate.stderr
        after = login(b)

        assert kid(after["access_token"]) != kid(before["access_token"])
        assert kid(login(a)["access_token"]) == kid(after["access_token"])  # A signs anew too
        for server in (a, b):  # old and new tokens verify on both, no restart
            for tokens in (before, after):
                status = server.call("GET", "/api/v1/users/me", token=tokens["access_token"])[0]
                assert status == 200


def signed_servers_env(key_file) -> dict[str, str]:
    return {
        **os.environ,
        "MYAPP_CONFIG": "testing",
        "MYAPP_JWT_ALGORITHM": "EdDSA",
        "MYAPP_JWT_PRIVATE_KEYS": str(key_file),
    }


def shared_state_scenario(a, b) -> None:
    """What one process changes, the other honours at once."""
    assert a.call("POST", "/api/v1/auth/register", USER)[0] == 201

    # A logout on B is honoured by A at once.
    tokens = login(a)
    assert b.call("GET", "/api/v1/users/me", token=tokens["access_token"])[0] == 200
    assert b.call("POST", "/api/v1/auth/logout", token=tokens["access_token"])[0] == 204
    assert a.call("GET", "/api/v1/users/me", token=tokens["access_token"])[0] == 401

    # Refresh-token reuse detected on B revokes the family on A too.
    first = login(a)
    status, second = a.call("POST", "/api/v1/auth/refresh", token=first["refresh_token"])
    assert status == 200
    assert b.call("POST", "/api/v1/auth/refresh", token=first["refresh_token"])[0] == 401
    assert a.call("POST", "/api/v1/auth/refresh", token=second["refresh_token"])[0] == 401
    assert a.call("GET", "/api/v1/users/me", token=second["access_token"])[0] == 401


class TestTwoProcesses:
    def test_state_when_changed_on_one_process_is_honoured_by_the_other(self, servers):
        shared_state_scenario(*servers)

    def test_state_when_both_processes_go_through_pgbouncer_is_shared_the_same(
        self, bounced_servers
    ):
        # Transaction pooling: each transaction may run on another server connection.
        shared_state_scenario(*bounced_servers)
        a, b = bounced_servers
        tokens = login(a)
        # Past psycopg's prepare threshold (5 runs of one statement per connection),
        # with fewer server connections behind the pooler than clients in front.
        for n in range(40):
            server = (a, b)[n % 2]
            assert server.call("GET", "/api/v1/users/me", token=tokens["access_token"])[0] == 200
            assert (
                server.call("GET", "/api/v1/auth/sessions", token=tokens["access_token"])[0] == 200
            )

    def test_rate_limit_when_hit_on_both_processes_is_counted_once(self, servers):
        a, b = servers
        body = {"email": "x@example.com"}
        allowed = parse(app_config.TestingConfig.RATELIMIT_PASSWORD_RESET).amount  # per client IP
        for n in range(allowed):
            assert (a, b)[n % 2].call("POST", "/api/v1/auth/password-reset", body)[0] == 202

        assert a.call("POST", "/api/v1/auth/password-reset", body)[0] == 429
        assert b.call("POST", "/api/v1/auth/password-reset", body)[0] == 429
