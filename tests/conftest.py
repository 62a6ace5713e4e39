"""Fixtures, each built on the one before: app -> client -> user -> auth_headers.

``client`` comes from pytest-flask, which uses our ``app`` fixture.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import re
from datetime import UTC, datetime

import jwt as pyjwt
import pytest
from freezegun import freeze_time
from hypothesis import settings
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from myapp.auth.models import AuthSession
from myapp.extensions import db, mail
from myapp.observability import JSONFormatter
from myapp.outbox.models import OutboxMessage
from myapp.users.models import User
from tests.factories import DEFAULT_PASSWORD, AdminFactory, UserFactory
from tests.support.database import (
    database_url_for_tests,
    get_test_app,
    isolated_test,
    release_test_app,
)
from tests.support.mfa import enrol
from tests.support.oidc import PROVIDER as OIDC_PROVIDER
from tests.support.oidc import OidcActions, OpenIdProvider
from tests.support.passkeys import SoftAuthenticator, register_passkey

# The testing config's APP_BASE_URL: the redirect URI the provider knows us by.
TEST_BASE_URL = "http://127.0.0.1:5000"

# Property tests stay quick in the suite; `make fuzz` selects the long campaign.
settings.register_profile("suite", max_examples=40, deadline=None)
settings.register_profile("fuzz", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


# The layers from fastest to slowest.
LAYER_ORDER = ("unit", "integration", "cli", "api", "fuzz", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Under mutation testing (`make mutation`: mutmut sets MUTANT_UNDER_TEST and runs
    # with -x), the tests likeliest to fail go first, so the first failure ends the
    # run sooner: those of files naming the mutated module, then the fast layers.
    # Only the order changes, never which tests run. Elsewhere pytest-randomly's
    # order stands.
    under_test = os.environ.get("MUTANT_UNDER_TEST")
    if not under_test:
        return
    rank = {layer: position for position, layer in enumerate(LAYER_ORDER)}
    # "myapp.observability.x__add_response_headers__mutmut_5" -> "myapp.observability"
    module = re.match(r"(.+?)\.x[_ǁ]", under_test)
    items.sort(
        key=lambda item: (
            not (module and module[1] in _source_of(item.path)),
            rank.get(item.path.parent.name, len(rank)),
        )
    )


@functools.cache
def _source_of(path) -> str:
    return path.read_text()


@pytest.fixture(scope="session")
def _session_app():
    """The app and its schema, once per run (per xdist worker)."""
    try:
        app = get_test_app()
    except OperationalError as error:
        # Loud, never a skip: a PostgreSQL run that cannot reach PostgreSQL proves nothing.
        url = database_url_for_tests().render_as_string(hide_password=True)
        pytest.exit(f"Cannot reach the test database {url}: {error}", returncode=3)
    yield app
    release_test_app()


@pytest.fixture
def app(_session_app):
    """The app, inside a transaction that is rolled back after the test."""
    with _session_app.app_context(), isolated_test(_session_app):
        yield _session_app


@pytest.fixture
def session(app):
    """The SQLAlchemy session the app uses (shared with the test's requests)."""
    return db.session


@pytest.fixture
def outbox(app):
    """The emails the app has sent during this test (memory backend)."""
    return mail.outbox


@pytest.fixture
def user(app):
    return UserFactory(email="ada@example.com", username="ada")


@pytest.fixture
def admin_user(app):
    return AdminFactory(email="grace@example.com", username="grace")


class AuthActions:
    """Log in through the real endpoint, as a client would."""

    def __init__(self, client) -> None:
        self._client = client

    def login(self, password: str = DEFAULT_PASSWORD, **identifier):
        return self._client.post("/api/v1/auth/login", json={"password": password, **identifier})

    def headers_for(self, user, password: str = DEFAULT_PASSWORD) -> dict[str, str]:
        response = self.login(password, email=user.email)
        assert response.status_code == 200, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['access_token']}"}

    def login_mfa(self, mfa_token: str, **proof):
        """The second step of a login: ``code=...`` or ``recovery_code=...``."""
        return self._client.post("/api/v1/auth/login/mfa", json={"mfa_token": mfa_token, **proof})

    def mfa_token_for(self, user, password: str = DEFAULT_PASSWORD) -> str:
        """The first step of a login with two-factor sign-in on."""
        response = self.login(password, email=user.email)
        assert response.get_json().get("mfa_required") is True, response.get_json()
        return response.get_json()["mfa_token"]

    def refreshed_headers_for(self, user) -> dict[str, str]:
        """Headers with a non-fresh access token: one from a refresh, not a login."""
        refresh = self.login(email=user.email).get_json()["refresh_token"]
        response = self._client.post(
            "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {refresh}"}
        )
        assert response.status_code == 200, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def auth_headers(auth, user):
    return auth.headers_for(user)


@pytest.fixture
def admin_headers(auth, admin_user):
    return auth.headers_for(admin_user)


@pytest.fixture
def clock():
    """Frozen time that a test moves on (``clock.tick(30)``): TOTP codes change
    every 30 s, and a used one is refused until the next step."""
    # Frozen at the real time: tokens issued before the freeze stay valid.
    with freeze_time(datetime.now(UTC)) as frozen:
        yield frozen


@pytest.fixture
def enrolled(client, auth_headers, clock):
    """``user`` with TOTP on (enrolled through the API from ``auth_headers``' session):
    its authenticator and recovery codes."""
    return enrol(client, auth_headers, clock)


@pytest.fixture
def authenticator(app):
    """A passkey device in software, for the app's relying party."""
    return SoftAuthenticator.for_app(app)


@pytest.fixture
def passkey(client, auth_headers, authenticator):
    """A passkey of ``user``, registered through the API from ``auth_headers``' session."""
    return register_passkey(client, auth_headers, authenticator)


@pytest.fixture(scope="session")
def openid_provider():
    """A real OpenID Provider (oidc-provider on Node.js) for this test process."""
    provider = OpenIdProvider([f"{TEST_BASE_URL}/api/v1/auth/oidc/{OIDC_PROVIDER}/callback"])
    yield provider
    provider.stop()


@pytest.fixture
def oidc(app, client, openid_provider):
    """The app with the provider configured, and sign-ins through it."""
    app.config["OIDC_PROVIDERS"] = {OIDC_PROVIDER: openid_provider.settings()}
    yield OidcActions(client, openid_provider, app.config["APP_BASE_URL"])
    app.config["OIDC_PROVIDERS"] = {}


@pytest.fixture
def audit_log(caplog):
    """The audit records of the test, as the JSON lines production would write."""
    caplog.set_level(logging.INFO, logger="myapp.audit")

    def lines(event: str | None = None) -> list[dict]:
        records = [r for r in caplog.records if r.name == "myapp.audit"]
        entries = [json.loads(JSONFormatter().format(r)) for r in records]
        return [e for e in entries if event is None or e["event"] == event]

    return lines


@pytest.fixture
def json_log():
    """The app's log lines as production writes them: formatted as they are emitted
    (inside the request, so with its request id), one JSON object per line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("myapp")
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


@pytest.fixture
def sql_statements(app):
    """The SQL statements run while the test runs (a list, filled as they happen)."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    # During a test db.engine is the test's connection, which every request uses.
    event.listen(db.engine, "before_cursor_execute", record)
    yield statements
    event.remove(db.engine, "before_cursor_execute", record)


# Not a skip that hides a missing service: these tests need PostgreSQL's concurrent
# connections by design, and the PostgreSQL run (which fails loudly when it cannot
# connect) executes them; CI runs it.
requires_postgresql = pytest.mark.skipif(
    database_url_for_tests().get_backend_name() != "postgresql",
    reason="needs concurrent connections to one database: runs in the PostgreSQL environment "
    "(make test-postgres, tox -e py312-postgres), which CI runs",
)


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


def session_of(access_token: str) -> str:
    """The session an access token belongs to (its ``sid`` claim)."""
    return pyjwt.decode(access_token, options={"verify_signature": False})["sid"]


def fresh(user) -> User:
    """The user's row as the database has it now (after requests changed it)."""
    db.session.expire_all()
    return db.session.get(User, user.id)


def live_sessions(user) -> int:
    """How many of the user's sessions are live (not revoked), as stored now."""
    return db.session.scalar(
        select(func.count())
        .select_from(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
    )


def mails(kind: str) -> list[OutboxMessage]:
    """The outbox's messages of one kind."""
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)))


def token_from(message) -> str:
    """The token in the link of an email."""
    match = re.search(r"[?&]token=([\w-]+)", message.body)
    assert match, f"no token link in {message.body!r}"
    return match.group(1)
