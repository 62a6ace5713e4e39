"""users.pending_email: a new address waiting for its confirmation link

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 05:10:00.000000

Plain ADD and DROP COLUMN, outside batch mode: on SQLite a batch rebuild of users
would drop its counting triggers (see 0005).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('users', sa.Column('pending_email', sa.String(length=254), nullable=True))


def downgrade():
    # Plain DROP COLUMN too (SQLite 3.35+ has it): no rebuild, the triggers stay.
    op.drop_column('users', 'pending_email')
