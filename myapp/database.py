"""Database helpers shared by every model: column types and engine set-up."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TypeVar
from weakref import WeakKeyDictionary

from flask import has_request_context, request
from sqlalchemy import DateTime, event, text
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (Python-side, so freezegun controls it)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always returned timezone-aware.

    SQLite drops tzinfo, PostgreSQL keeps it; this type makes both return the same
    aware UTC value, so the API prints the same ``+00:00`` on either database.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use an aware value")
        value = value.astimezone(UTC)
        # SQLite would store the offset as text and compare strings: keep it naive UTC.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Repository:
    """Base of the repositories: they work on the app's session unless given one."""

    def __init__(self, session: Session | None = None) -> None:
        if session is None:
            from myapp.extensions import db  # late: extensions imports the models' base

            session = db.session
        self.session = session


T = TypeVar("T")

# Execution option read by _configure_sqlite's BEGIN handler.
SQLITE_NO_BEGIN = "myapp_sqlite_no_begin"
_autocommit_engines: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def _autocommit(engine: Engine) -> Engine:
    """The engine's autocommit view (same pool), made once: making one is not cheap."""
    if engine not in _autocommit_engines:
        if engine.dialect.name == "sqlite":
            # Not isolation_level="AUTOCOMMIT": resetting it on check-in would hand
            # BEGIN back to pysqlite. The driver already autocommits (see
            # _configure_sqlite); skipping our BEGIN is all it takes.
            options = {SQLITE_NO_BEGIN: True}
        else:
            options = {"isolation_level": "AUTOCOMMIT"}
        _autocommit_engines[engine] = engine.execution_options(**options)
    return _autocommit_engines[engine]


def read_rows(statement: Executable, parameters: dict) -> list[Row]:
    """The rows of one self-contained read, in a single round trip.

    A lone SELECT is atomic by itself, so it runs in autocommit mode, outside the
    request's session: no BEGIN before it and no ROLLBACK after it, and no
    transaction left open while the request goes on (a password hash takes a fifth
    of a second). The token check on every authenticated request reads this way
    (see docs/performance.md).

    When the app's bind is a connection (an outer transaction wraps the app, as
    the test suite does for each test) the read goes through it, so that it sees
    that transaction's work.
    """
    from myapp.extensions import db  # late: extensions imports the models' base

    bind = db.engine
    if isinstance(bind, Connection):
        return bind.execute(statement, parameters).all()
    engine = _autocommit(bind)
    try:
        with engine.connect() as connection:
            return connection.execute(statement, parameters).all()
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    # The connection had died since its last use (a database restart or failover):
    # SQLAlchemy has discarded the pool's connections, and a read is safe to repeat.
    with engine.connect() as connection:
        return connection.execute(statement, parameters).all()


def first_row(statement: Executable, parameters: dict) -> Row | None:
    """The first row of ``read_rows``, or None."""
    rows = read_rows(statement, parameters)
    return rows[0] if rows else None


def attach_loaded(session: Session, model: type[T], row: Row) -> T:
    """An instance of ``model`` built from a row read outside ``session`` (first_row),
    attached to the session as if the session had loaded it: no query, and its
    values count as loaded, not as changes, so it can be changed and saved."""
    instance = model(**row._mapping)
    make_transient_to_detached(instance)
    if session.identity_map.get(instance_state(instance).key) is None:
        session.add(instance)  # the usual case: nothing loaded it in this request yet
        return instance
    return session.merge(instance, load=False)  # refreshes the one already loaded


def configure_engine(engine: Engine, ping_after_idle_seconds: float) -> None:
    """Dialect fixes and connection checks applied to every engine the app creates."""
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)  # a file or memory: no connection to lose, no ping
    else:
        _ping_after_idle(engine, ping_after_idle_seconds)


_LAST_CHECKIN = "myapp_last_checkin"


def _ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use only if it sat idle for a while.

    SQLAlchemy's pool_pre_ping costs a round trip on every checkout, that is on
    every request. The connections that die unseen are idle ones (a database
    restart or failover, a firewall dropping quiet connections); a busy one that
    dies fails its statement, and SQLAlchemy then discards the whole pool. The
    token check, every authenticated request's first read, also retries once on a
    fresh connection (first_row), so only an unauthenticated request that lands on
    a connection lost within the last ``idle_seconds`` sees a 503 (retryable).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, connection_record):
        connection_record.info[_LAST_CHECKIN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, connection_record, connection_proxy):
        last = connection_record.info.get(_LAST_CHECKIN)
        if last is None or time.monotonic() - last < idle_seconds:
            return  # just connected, or answered a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and checks out another.
            raise DisconnectionError("connection lost while idle") from error


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's legacy transaction handling issues BEGIN lazily and commits on its
    # own around some statements, which breaks SAVEPOINTs (nested transactions, and
    # the test suite's rollback isolation). Take control of BEGIN, as SQLAlchemy's
    # documentation recommends.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record):
        dbapi_connection.isolation_level = None
        # SQLite ignores foreign keys unless asked, per connection.
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        if connection.get_execution_options().get(SQLITE_NO_BEGIN):
            return
        # A plain (deferred) transaction that reads and then writes fails at once
        # with "database is locked" when another process writes meanwhile: SQLite
        # cannot wait on that lock upgrade. So whatever may write (any request but
        # a safe one, any command) takes the write lock at BEGIN, and waits for it.
        read_only = has_request_context() and request.method in SAFE_METHODS
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def ping_database() -> None:
    """One round trip to the database; raises if it does not answer."""
    from myapp.extensions import db

    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        db.session.rollback()  # leave the session usable for whatever comes next
        raise
