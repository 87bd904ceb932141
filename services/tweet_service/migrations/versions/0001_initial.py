"""tweets and idempotency keys

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
        "tweets",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_tweets_user_id_id", "tweets", ["user_id", sa.text("id DESC")])
    create_idempotency_keys_table()


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("tweets")
