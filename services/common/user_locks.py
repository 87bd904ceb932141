"""A per-user PostgreSQL advisory lock that orders a user's deletion
against the writes for that user which the service checked against the
user service just before it.

Such a write (a tweet, a follow) takes the user's lock shared, then checks
the service's own record of deleted users (`DeletedUserMixin`) and writes;
applying `user.deleted` takes it exclusive, then records the deletion and
deletes the user's rows. Without it the two can miss each other: under READ
COMMITTED each statement sees what was committed when it began, so the
write misses the uncommitted record, the deletion's DELETE misses the
uncommitted row, and the row stays. With it, the deletion waits for the
writes in flight to commit and then sees their rows; a write that comes
later waits for the deletion to commit and then, in its next statement,
sees the record and refuses.

Transaction-level locks (`pg_advisory_xact_lock*`): released by the commit
or the rollback, never leaked by an error. SQLite (`make dev`) has no
advisory locks and goes without: its writers take turns, which leaves only
the moment between a write's check and its insert (pysqlite begins the
transaction at the insert).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import BigInteger, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import UTCDateTime, utcnow
from .inbox import dialect_insert

# The lock's key is two int4s: this namespace ("USER" in ASCII) and the
# user's. That key space is separate from the one-bigint keys of
# common.migrations.lock_key (PostgreSQL docs, advisory lock functions).
NAMESPACE = 0x55534552

# The shared lock as one statement of a longer query string, with the
# parameter :user_lock_key = user_key(user_id).
SHARED = f"SELECT pg_advisory_xact_lock_shared({NAMESPACE}, :user_lock_key)"


def _locks(function: str):
    """Many users' locks in one round trip: unnest reads the array out in order."""
    return text(f"SELECT {function}({NAMESPACE}, key) FROM unnest(CAST(:keys AS integer[])) AS key")


_SHARED_LOCKS = _locks("pg_advisory_xact_lock_shared")
_EXCLUSIVE_LOCKS = _locks("pg_advisory_xact_lock")


class DeletedUserMixin:
    """Columns of the `deleted_users` table a service keeps of the
    deletions it has applied: its writes for those users are refused."""

    __tablename__ = "deleted_users"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def user_key(user_id: int) -> int:
    """The user id folded into int4. Ids 2**31 apart share a lock: that only
    makes one of them wait for the other."""
    return user_id % 2**31


def lock_users(session: Session, user_ids: Iterable[int], *, exclusive: bool = False) -> None:
    """Take the users' locks in the session's transaction, until it ends.
    In key order, so two transactions that lock the same users cannot each
    hold one the other waits for."""
    keys = sorted({user_key(user_id) for user_id in user_ids})
    if keys and session.get_bind().dialect.name == "postgresql":
        session.execute(_EXCLUSIVE_LOCKS if exclusive else _SHARED_LOCKS, {"keys": keys})


def record_deletion(session: Session, model: type[DeletedUserMixin], user_id: int) -> None:
    """Record that the user's deletion is applied here (again: nothing new),
    so that the service's writes for them are refused from now on."""
    session.execute(dialect_insert(session, model).values(user_id=user_id, deleted_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["user_id"]))
