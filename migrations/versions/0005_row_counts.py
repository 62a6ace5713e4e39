"""row_counts: the exact number of users, kept by triggers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 07:20:00.000000

"""
from alembic import op
import sqlalchemy as sa

from myapp.users.counting import install_user_count, uninstall_user_count


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'row_counts',
        sa.Column('name', sa.String(length=50), nullable=False),
        sa.Column('total', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_row_counts')),
    )
    # Counts the users already there, then keeps counting.
    install_user_count(op.get_bind())


def downgrade():
    uninstall_user_count(op.get_bind())
    op.drop_table('row_counts')
