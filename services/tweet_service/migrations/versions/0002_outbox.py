"""the outbox, for the events other services consume; idempotency keys store no Location

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

from common.outbox import create_outbox_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_table()
    # A replayed POST's Location is built from its body's id now.
    with op.batch_alter_table("idempotency_keys") as table:
        table.drop_column("location")


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as table:
        table.add_column(sa.Column("location", sa.Text(), nullable=True))
    op.drop_index("ix_outbox_destination_id", table_name="outbox")
    op.drop_table("outbox")
