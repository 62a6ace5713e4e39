"""What every engine the app creates gets: SQLite's transaction handling, and a
ping only for connections that sat idle."""

from __future__ import annotations

import time
from typing import Any

from flask import has_request_context, request
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from myapp.extensions import db

# Execution option read by _configure_sqlite's BEGIN handler (reads.read_rows sets it).
SQLITE_NO_BEGIN = "myapp_sqlite_no_begin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LAST_CHECKIN = "myapp_last_checkin"


def configure_engine(engine: Engine, ping_after_idle_seconds: float) -> None:
    """Dialect fixes and connection checks applied to every engine the app creates."""
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)  # a file or memory: no connection to lose, no ping
    else:
        _ping_after_idle(engine, ping_after_idle_seconds)


def _ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use only if it sat idle for a while.

    SQLAlchemy's pool_pre_ping costs a round trip on every checkout, that is on
    every request. The connections that die unseen are idle ones (a database
    restart or failover, a firewall dropping quiet connections); a busy one that
    dies fails its statement, and SQLAlchemy then discards the whole pool. The
    token check, every authenticated request's first read, also retries once on a
    fresh connection (reads.read_rows), so only an unauthenticated request that
    lands on a connection lost within the last ``idle_seconds`` sees a 503
    (retryable).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        connection_record.info[_LAST_CHECKIN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(
        dbapi_connection: Any,
        connection_record: ConnectionPoolEntry,
        connection_proxy: PoolProxiedConnection,
    ) -> None:
        last = connection_record.info.get(_LAST_CHECKIN)
        if last is None or time.monotonic() - last < idle_seconds:
            return  # just connected, or answered a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and checks out another.
            raise DisconnectionError("connection lost while idle") from error


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's legacy transaction handling issues BEGIN lazily and commits on its
    # own around some statements, which breaks SAVEPOINTs (nested transactions, and
    # the test suite's rollback isolation). Take control of BEGIN, as SQLAlchemy's
    # documentation recommends.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        # SQLite ignores foreign keys unless asked, per connection.
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
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
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        db.session.rollback()  # leave the session usable for whatever comes next
        raise
