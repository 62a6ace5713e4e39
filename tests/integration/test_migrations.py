"""The migrations build exactly the schema the models describe, and undo it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from myapp import create_app
from myapp.database.columns import UTCDateTime
from myapp.extensions import db
from tests.support.committed import own_database
from tests.support.database import database_url_for_tests

MIGRATIONS = str(Path(__file__).resolve().parents[2] / "migrations")


@pytest.fixture
def empty_database_url(tmp_path):
    """A database of the suite's kind with nothing in it."""
    url = database_url_for_tests()
    if url.get_backend_name() != "postgresql":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    with own_database("migrations") as database:
        yield database.uri


@pytest.fixture
def migration_app(empty_database_url):
    app = create_app("testing", overrides={"SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        yield app
        db.engine.dispose()


class TestMigrations:
    def test_upgrade_when_run_on_empty_database_matches_models(self, migration_app):
        flask_migrate.upgrade(directory=MIGRATIONS)

        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert differences == []
        assert "users" in inspect(db.engine).get_table_names()

    def test_upgrade_when_users_exist_counts_them_and_keeps_counting(self, migration_app):
        flask_migrate.upgrade(directory=MIGRATIONS, revision="0004")
        users = sa.table(
            "users",
            sa.column("email"),
            sa.column("username"),
            sa.column("password_hash"),
            sa.column("created_at", UTCDateTime),
            sa.column("updated_at", UTCDateTime),
        )
        now = datetime.now(UTC)

        def rows(*names):
            return [
                {
                    "email": f"{name}@example.com",
                    "username": name,
                    "password_hash": "x",
                    "created_at": now,
                    "updated_at": now,
                }
                for name in names
            ]

        with db.engine.begin() as connection:
            connection.execute(sa.insert(users), rows("u0", "u1", "u2"))

        flask_migrate.upgrade(directory=MIGRATIONS)
        with db.engine.begin() as connection:
            connection.execute(sa.insert(users), rows("late"))
            total = connection.execute(sa.text("SELECT total FROM row_counts")).scalar()

        assert total == 4

    def test_downgrade_when_run_to_base_removes_every_table(self, migration_app):
        flask_migrate.upgrade(directory=MIGRATIONS)

        flask_migrate.downgrade(directory=MIGRATIONS, revision="base")

        assert inspect(db.engine).get_table_names() == ["alembic_version"]
