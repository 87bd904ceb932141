"""The user service's tables. Only this service reads or writes them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.db import BigId, UTCDateTime, utcnow
from common.idempotency import IdempotencyKeyMixin
from common.outbox import OutboxMixin


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}  # never reuse a deleted user's id

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    handle: Mapped[str | None] = mapped_column(String(15))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# Handles are unique whatever their case: "Ali" and "ali" are one handle.
Index("uq_users_handle_lower", func.lower(User.handle), unique=True)


class IdempotencyKey(IdempotencyKeyMixin, Base):
    pass


class OutboxEvent(OutboxMixin, Base):
    """Events committed with a user write: the cache invalidations (common.outbox)."""
