"""follows, follower counts and received events

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

from common.db import BigId, UTCDateTime
from common.inbox import create_received_events_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("follower_id", sa.BigInteger(), nullable=False),
        sa.Column("followee_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("follower_id", "followee_id", name="uq_follows_pair"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_follows_follower_id_id", "follows", ["follower_id", sa.text("id DESC")])
    op.create_index("ix_follows_followee_id_id", "follows", ["followee_id", sa.text("id DESC")])
    op.create_table(
        "follower_counts",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("followers", sa.Integer(), nullable=False),
    )
    create_received_events_table()


def downgrade() -> None:
    op.drop_table("received_events")
    op.drop_table("follower_counts")
    op.drop_table("follows")
