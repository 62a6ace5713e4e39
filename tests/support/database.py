"""The test database: one per process, schema created once, each test rolled back.

Used by ``tests/conftest.py`` (pytest) and ``tests/support/testcase.py``
(unittest) alike, so both kinds of test get exactly the same isolation.
"""

from __future__ import annotations

import atexit
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from myapp import create_app
from myapp.config import normalise_database_url
from myapp.extensions import db, mail
from myapp.ratelimit import limiter_of

DEFAULT_TEST_DATABASE_URL = "sqlite://"


def database_url_for_tests() -> URL:
    """``TEST_DATABASE_URL`` (in-memory SQLite by default), one database per xdist
    worker, and per process under mutmut (which runs several test sessions at once,
    each in a process of its own, each dropping its database at its end)."""
    url = make_url(
        normalise_database_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL))
    )
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if "MUTANT_UNDER_TEST" in os.environ:
        worker = f"mutant{os.getpid()}"
    if worker and url.get_backend_name() == "postgresql":
        url = url.set(database=f"{url.database}_{worker}")
    return url


def check_expected_backend(url: URL) -> None:
    """Fail when ``MYAPP_TEST_EXPECT_BACKEND`` names another database than the URL.

    ``make test-postgres`` and tox's postgres env set it, so a stray
    ``TEST_DATABASE_URL`` can never turn a PostgreSQL run into a SQLite one.
    """
    expected = os.environ.get("MYAPP_TEST_EXPECT_BACKEND")
    if expected and url.get_backend_name() != expected:
        raise RuntimeError(
            f"MYAPP_TEST_EXPECT_BACKEND={expected} but TEST_DATABASE_URL is "
            f"{url.render_as_string(hide_password=True)}"
        )


class TestDatabase:
    """Creates and drops a PostgreSQL database for the run; SQLite needs neither."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, url: URL) -> None:
        self.url = url
        self.created = False

    @property
    def uri(self) -> str:
        """The URL as a string, password included, for SQLALCHEMY_DATABASE_URI."""
        return self.url.render_as_string(hide_password=False)

    @property
    def is_postgresql(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    def _maintenance_engine(self):
        return create_engine(self.url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def create(self) -> None:
        if not self.is_postgresql:
            return
        engine = self._maintenance_engine()
        try:
            with engine.connect() as connection:
                name = connection.dialect.identifier_preparer.quote(self.url.database)
                # A crashed earlier run may have left it behind.
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                connection.execute(text(f"CREATE DATABASE {name}"))
        finally:
            engine.dispose()
        self.created = True

    def drop(self) -> None:
        if not self.created:
            return
        engine = self._maintenance_engine()
        try:
            with engine.connect() as connection:
                name = connection.dialect.identifier_preparer.quote(self.url.database)
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        finally:
            engine.dispose()
        self.created = False


# Keys a response must never contain: a password, a hash, a secret.
SENSITIVE_KEY = re.compile(r"password|hash|secret|salt", re.IGNORECASE)
# Documents that name input fields rather than carry values.
NOT_WALKED = ("/api/openapi.json",)
# Secrets an endpoint exists to hand over, once: the authenticator app's seed at
# enrolment (the user types or scans it). Anywhere else they are a leak.
SHOWN_ONCE = {"/api/v1/auth/mfa/totp/setup": ["/secret"]}


def sensitive_keys(value, path: str = "") -> list[str]:
    """Paths of keys in a JSON value that look like a password or a hash.

    Validation ``errors`` are skipped: they name the input field that was wrong
    ("password": ["Too short"]), they carry no value.
    """
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "errors":
                continue
            if SENSITIVE_KEY.search(str(key)):
                found.append(f"{path}/{key}")
            found += sensitive_keys(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += sensitive_keys(item, f"{path}/{index}")
    return found


class RequestScopedClient(FlaskClient):
    """A test client whose requests end as they do in production.

    The test and its requests share one app context (pytest-flask pushes it for the
    whole test), hence one ``db.session``. In production the session is removed at
    the end of each request and its uncommitted work discarded; rolling back here
    does the same, so a view that forgets to commit fails its test. Committed work
    stays (it only released a savepoint of the test's outer transaction).

    Every JSON response is also walked for keys that look like a password or a
    hash (see ``sensitive_keys``): a leak fails whichever test provoked it.
    """

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        db.session.rollback()
        if response.is_json and response.request.path not in NOT_WALKED:
            leaked = sensitive_keys(response.get_json(silent=True))
            allowed = SHOWN_ONCE.get(response.request.path, [])
            leaked = [key for key in leaked if key not in allowed]
            assert not leaked, f"{response.request.path} answered sensitive keys {leaked}"
        return response


_state: dict[str, object] = {}


def get_test_app() -> Flask:
    """The app for this process's tests, with its database and schema (made once)."""
    if "app" not in _state:
        url = database_url_for_tests()
        check_expected_backend(url)
        database = TestDatabase(url)
        database.create()
        _state["database"] = database
        atexit.register(release_test_app)
        app = create_app("testing", overrides={"SQLALCHEMY_DATABASE_URI": database.uri})
        app.test_client_class = RequestScopedClient
        with app.app_context():
            db.create_all()
        _state["app"] = app
    return _state["app"]


def release_test_app() -> None:
    """Close the app's connections and drop its database (safe to call twice)."""
    app = _state.pop("app", None)
    if app is not None:
        with app.app_context():
            db.engine.dispose()
    database = _state.pop("database", None)
    if database is not None:
        database.drop()


@contextmanager
def isolated_database() -> Iterator[None]:
    """Run the enclosed code inside one transaction that is rolled back at the end.

    Call inside an app context. The app's engine is swapped, for the duration, for
    one connection holding an open transaction; the session joins it by creating
    a SAVEPOINT, so the app's own ``commit()`` releases a savepoint and its
    ``rollback()`` rolls back to one, while the outer transaction stays open.
    (Flask-SQLAlchemy 3 resolves binds through ``db.engines``, ignoring ``bind=``
    given to a session, which is why the swap happens there.)
    """
    engines = db.engines
    engine = engines[None]
    connection = engine.connect()
    transaction = connection.begin()
    db.session.remove()
    db.session.session_factory.configure(join_transaction_mode="create_savepoint")
    engines[None] = connection
    try:
        yield
    finally:
        db.session.remove()
        engines[None] = engine
        if transaction.is_active:
            transaction.rollback()
        connection.close()


def reset_app_state(app: Flask) -> None:
    """Empty what the app keeps in memory between requests: outbox, rate counters."""
    mail.outbox.clear()
    if app.config["RATELIMIT_STORAGE_URI"].startswith("memory://"):
        # Only ever reset private memory storage: a Redis reset would wipe the
        # counters of everything else using that server.
        limiter_of(app).reset()


@contextmanager
def isolated_test(app: Flask) -> Iterator[None]:
    """Everything a test must not leak: its database work and the app's in-memory
    state (email outbox, rate-limit counters). Call inside an app context."""
    reset_app_state(app)
    with isolated_database():
        yield
    reset_app_state(app)


@contextmanager
def variant_app(**overrides) -> Iterator[Flask]:
    """Another app on the suite's database with other settings, isolated like the
    main one (for settings read at start-up: proxies, rate-limit storage)."""
    uri = get_test_app().config["SQLALCHEMY_DATABASE_URI"]
    app = create_app("testing", overrides={"SQLALCHEMY_DATABASE_URI": uri, **overrides})
    app.test_client_class = RequestScopedClient
    with app.app_context():
        if make_url(uri).get_backend_name() == "sqlite":
            db.create_all()  # a new in-memory SQLite engine is a new, empty database
        try:
            with isolated_test(app):
                yield app
        finally:
            db.engine.dispose()
