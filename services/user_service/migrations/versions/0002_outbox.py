"""the outbox replaces pending cache invalidations; idempotency keys store no Location

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

from common.db import BigId, UTCDateTime
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
    # Invalidations still pending move to the outbox, which applies them.
    invalidations = sa.table("cache_invalidations", sa.column("user_id"),
                             sa.column("created_at", UTCDateTime()))
    pending = op.get_bind().execute(sa.select(invalidations)).all()
    outbox = sa.table("outbox", sa.column("destination"), sa.column("topic"),
                      sa.column("payload", sa.JSON()), sa.column("created_at", UTCDateTime()))
    op.bulk_insert(outbox, [{"destination": "cache", "topic": "user.changed",
                             "payload": {"user_id": user_id}, "created_at": created_at}
                            for user_id, created_at in pending])
    op.drop_table("cache_invalidations")


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as table:
        table.add_column(sa.Column("location", sa.Text(), nullable=True))
    op.create_table(
        "cache_invalidations",
        sa.Column("user_id", BigId, primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.drop_index("ix_outbox_destination_id", table_name="outbox")
    op.drop_table("outbox")
