"""the outbox, for the events other services consume

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
from alembic import op

from common.outbox import create_outbox_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_table()


def downgrade() -> None:
    op.drop_index("ix_outbox_destination_id", table_name="outbox")
    op.drop_table("outbox")
