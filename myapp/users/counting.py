"""The exact number of users, kept by the database itself.

The admin list sends its total with every page, and ``count(*)`` over 100,000
users cost more than all the rest of the request. Triggers keep the number in
``row_counts`` inside the same transaction as every insert and delete, so it is
exact whoever writes (the app, ``flask seed-users``'s bulk load, SQL by hand), and
reading it is one primary-key lookup. Filtered lists still count their matches.

The cost is on writes: each statement that inserts or deletes users updates one
row, whose lock is held until commit, so such transactions take turns on it.
Registrations commit at once, so the wait is short. On SQLite, a migration that
rebuilds ``users`` (batch mode) drops its triggers and must install them again.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

USERS = "users"  # the row of row_counts that counts the users table

_POSTGRESQL = (
    """
    CREATE OR REPLACE FUNCTION count_users() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            UPDATE row_counts SET total = total + (SELECT count(*) FROM added)
            WHERE name = 'users';
        ELSIF TG_OP = 'DELETE' THEN
            UPDATE row_counts SET total = total - (SELECT count(*) FROM removed)
            WHERE name = 'users';
        ELSE
            UPDATE row_counts SET total = 0 WHERE name = 'users';
        END IF;
        RETURN NULL;
    END $$
    """,
    # Per statement, with the rows it touched: a bulk insert updates the count once.
    """
    CREATE OR REPLACE TRIGGER users_counted_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION count_users()
    """,
    """
    CREATE OR REPLACE TRIGGER users_counted_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION count_users()
    """,
    """
    CREATE OR REPLACE TRIGGER users_counted_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION count_users()
    """,
)

_SQLITE = (  # SQLite triggers are per row only
    """
    CREATE TRIGGER IF NOT EXISTS users_counted_insert AFTER INSERT ON users
    BEGIN UPDATE row_counts SET total = total + 1 WHERE name = 'users'; END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS users_counted_delete AFTER DELETE ON users
    BEGIN UPDATE row_counts SET total = total - 1 WHERE name = 'users'; END
    """,
)

_START = """
    INSERT INTO row_counts (name, total)
    SELECT 'users', count(*) FROM users
    WHERE NOT EXISTS (SELECT 1 FROM row_counts WHERE name = 'users')
"""


def install_user_count(connection: Connection) -> None:
    """Create the triggers and the starting count; safe to run again."""
    statements = _POSTGRESQL if connection.dialect.name == "postgresql" else _SQLITE
    for statement in (*statements, _START):
        connection.execute(text(statement))
