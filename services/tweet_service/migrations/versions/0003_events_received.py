"""received events, and the users whose deletion was applied

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

from common.db import UTCDateTime
from common.inbox import create_received_events_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_received_events_table()
    op.create_table(
        "deleted_users",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("deleted_users")
    op.drop_table("received_events")
