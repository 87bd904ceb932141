"""The tweet service's tables. Users live in the user service: `user_id` is
a reference checked over its HTTP API, not a foreign key."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.db import BigId, UTCDateTime, utcnow
from common.idempotency import IdempotencyKeyMixin
from common.inbox import ReceivedEventMixin
from common.outbox import OutboxMixin
from common.user_locks import DeletedUserMixin


class Base(DeclarativeBase):
    pass


class Tweet(Base):
    __tablename__ = "tweets"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# A user's timeline, newest first, page after page: one index range scan.
Index("ix_tweets_user_id_id", Tweet.user_id, Tweet.id.desc())


class IdempotencyKey(IdempotencyKeyMixin, Base):
    pass


class OutboxEvent(OutboxMixin, Base):
    """Events committed with a tweet write, for other services (common.outbox)."""


class ReceivedEvent(ReceivedEventMixin, Base):
    """Events from other services already applied (common.inbox)."""


class DeletedUser(DeletedUserMixin, Base):
    """Users whose deletion this service has applied: a tweet that was
    checked against the user service just before the deletion is refused
    rather than stored after its author's tweets were deleted."""
