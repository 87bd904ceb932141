"""users, idempotency keys, pending cache invalidations

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

from common.db import BigId, UTCDateTime
from common.migrations import create_idempotency_keys_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("handle", sa.String(15), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("uq_users_handle_lower", "users", [sa.text("lower(handle)")], unique=True)
    op.create_table(
        "cache_invalidations",
        sa.Column("user_id", BigId, primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    create_idempotency_keys_table()


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("cache_invalidations")
    op.drop_index("uq_users_handle_lower", table_name="users")
    op.drop_table("users")
