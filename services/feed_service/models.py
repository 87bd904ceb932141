"""The feed service's tables: who follows whom, and the events applied.
Users and tweets live in their own services: ids here are references
checked over their HTTP APIs, not foreign keys. Timelines are not stored
here: they are derived from follows and tweets (and cached in Redis)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.db import BigId, UTCDateTime, utcnow
from common.inbox import ReceivedEventMixin
from common.user_locks import DeletedUserMixin


class Base(DeclarativeBase):
    pass


class Follow(Base):
    __tablename__ = "follows"
    __table_args__ = (UniqueConstraint("follower_id", "followee_id", name="uq_follows_pair"),
                      {"sqlite_autoincrement": True})

    # The id orders follows newest first for keyset pages.
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    follower_id: Mapped[int] = mapped_column(BigInteger)
    followee_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# Whom a user follows, and who follows a user: newest first, one range scan each.
Index("ix_follows_follower_id_id", Follow.follower_id, Follow.id.desc())
Index("ix_follows_followee_id_id", Follow.followee_id, Follow.id.desc())


class FollowerCount(Base):
    """Followers per user, kept with the follows: decides whose tweets are
    fanned out on write and whose are merged in at read time."""

    __tablename__ = "follower_counts"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    followers: Mapped[int] = mapped_column(Integer)


class ReceivedEvent(ReceivedEventMixin, Base):
    """Events already applied: a redelivered one changes nothing (common.inbox)."""


class DeletedUser(DeletedUserMixin, Base):
    """Users whose deletion this service has applied: a follow that was
    checked against the user service just before the deletion is refused
    rather than stored after the user's follows were deleted."""
