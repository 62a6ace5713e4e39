"""Database helpers shared by every model: column types and engine set-up."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
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


def configure_engine(engine: Engine) -> None:
    """Dialect fixes applied to every engine the app creates."""
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)


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
        connection.exec_driver_sql("BEGIN")


def ping_database() -> None:
    """One round trip to the database; raises if it does not answer."""
    from myapp.extensions import db

    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        db.session.rollback()  # leave the session usable for whatever comes next
        raise
