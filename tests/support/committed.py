"""An app on a database of its own, WITHOUT rollback isolation.

For tests that need several real connections at once (races, concurrency), which
one shared test transaction cannot give. The database is created for the test and
dropped after it, so nothing leaks into other tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from myapp import create_app
from myapp.extensions import db
from tests.support.database import TestDatabase, database_url_for_tests


@contextmanager
def committed_app(suffix: str) -> Iterator[Flask]:
    url = database_url_for_tests()
    database = TestDatabase(url.set(database=f"{url.database}_{suffix}"))
    database.create()
    try:
        app = create_app("testing", overrides={"SQLALCHEMY_DATABASE_URI": database.uri})
        with app.app_context():
            db.create_all()
        try:
            yield app
        finally:
            with app.app_context():
                db.engine.dispose()
    finally:
        database.drop()
