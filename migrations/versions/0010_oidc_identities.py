"""oidc identities: accounts at OpenID Providers linked to ours (provider + sub),
and the sign-ins sent to a provider until their callback

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 09:32:20.074448

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('oidc_authorizations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('browser_hash', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('code_verifier', sa.String(length=128), nullable=False),
    sa.Column('next_path', sa.String(length=255), nullable=False),
    sa.Column('link_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['link_user_id'], ['users.id'], name=op.f('fk_oidc_authorizations_link_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oidc_authorizations')),
    sa.UniqueConstraint('state_hash', name=op.f('uq_oidc_authorizations_state_hash'))
    )
    with op.batch_alter_table('oidc_authorizations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_authorizations_expires_at'), ['expires_at'], unique=False)

    op.create_table('oidc_identities',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oidc_identities_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oidc_identities')),
    sa.UniqueConstraint('provider', 'subject', name=op.f('uq_oidc_identities_provider'))
    )
    with op.batch_alter_table('oidc_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_identities_user_id'), ['user_id'], unique=False)



def downgrade():
    with op.batch_alter_table('oidc_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_identities_user_id'))

    op.drop_table('oidc_identities')
    with op.batch_alter_table('oidc_authorizations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_authorizations_expires_at'))

    op.drop_table('oidc_authorizations')
