"""Hot-path reads in one round trip, outside the session's transaction, and handing
their rows to the session as loaded instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql import Executable

from myapp.database.engine import SQLITE_NO_BEGIN
from myapp.database.unit_of_work import DbSession
from myapp.extensions import db

T = TypeVar("T")

_autocommit_engines: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def _autocommit(engine: Engine) -> Engine:
    """The engine's autocommit view (same pool), made once: making one is not cheap."""
    if engine not in _autocommit_engines:
        options: dict[str, Any]
        if engine.dialect.name == "sqlite":
            # Not isolation_level="AUTOCOMMIT": resetting it on check-in would hand
            # BEGIN back to pysqlite. The driver already autocommits (see
            # engine._configure_sqlite); skipping our BEGIN is all it takes.
            options = {SQLITE_NO_BEGIN: True}
        else:
            options = {"isolation_level": "AUTOCOMMIT"}
        _autocommit_engines[engine] = engine.execution_options(**options)
    return _autocommit_engines[engine]


def read_rows(statement: Executable, parameters: Mapping[str, Any]) -> list[Row[Any]]:
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
    bind: Engine | Connection = db.engine
    if isinstance(bind, Connection):
        return list(bind.execute(statement, parameters).all())
    engine = _autocommit(bind)
    try:
        with engine.connect() as connection:
            return list(connection.execute(statement, parameters).all())
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    # The connection had died since its last use (a database restart or failover):
    # SQLAlchemy has discarded the pool's connections, and a read is safe to repeat.
    with engine.connect() as connection:
        return list(connection.execute(statement, parameters).all())


def first_row(statement: Executable, parameters: Mapping[str, Any]) -> Row[Any] | None:
    """The first row of ``read_rows``, or None."""
    rows = read_rows(statement, parameters)
    return rows[0] if rows else None


def attach_loaded(session: DbSession, model: type[T], row: Row[Any]) -> T:
    """An instance of ``model`` built from a row read outside ``session`` (first_row),
    attached to the session as if the session had loaded it: no query, and its
    values count as loaded, not as changes, so it can be changed and saved."""
    instance = model(**row._mapping)
    make_transient_to_detached(instance)
    key = instance_state(instance).key  # set by make_transient_to_detached
    if key is None or session.identity_map.get(key) is None:
        session.add(instance)  # the usual case: nothing loaded it in this request yet
        return instance
    return session.merge(instance, load=False)  # refreshes the one already loaded
