"""row_counts: the exact number of users, kept by triggers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 07:20:00.000000

The triggers as of this revision (myapp/users/counting.py installs the same on
create_all); a revision keeps its own copy, so that later changes to the app
cannot change what it did.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

POSTGRESQL = (
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
SQLITE = (
    """
    CREATE TRIGGER IF NOT EXISTS users_counted_insert AFTER INSERT ON users
    BEGIN UPDATE row_counts SET total = total + 1 WHERE name = 'users'; END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS users_counted_delete AFTER DELETE ON users
    BEGIN UPDATE row_counts SET total = total - 1 WHERE name = 'users'; END
    """,
)
TRIGGERS = ('users_counted_insert', 'users_counted_delete', 'users_counted_truncate')


def upgrade():
    op.create_table(
        'row_counts',
        sa.Column('name', sa.String(length=50), nullable=False),
        sa.Column('total', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_row_counts')),
    )
    postgresql = op.get_bind().dialect.name == 'postgresql'
    for statement in POSTGRESQL if postgresql else SQLITE:
        op.execute(statement)
    # The users already there; the triggers count from here on.
    op.execute("INSERT INTO row_counts (name, total) SELECT 'users', count(*) FROM users")


def downgrade():
    postgresql = op.get_bind().dialect.name == 'postgresql'
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON users" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS count_users()")
    op.drop_table('row_counts')
