"""Every read and write of users: the one data-access layer of the service.

The store owns the database's pools and sessions, begins and commits every
transaction, and reads users through the cache (cache-aside): a lookup asks
the cache first and reads the rest in one query, which then fills the
cache. A write commits the user's invalidation with the change (an outbox
row); the outbox relay applies it to the cache right after the commit.
It raises the problems of its domain: no such user (404), a taken handle (409).
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common import idempotency
from common.db import Database
from common.idempotency import Replay, Requested
from common.outbox import HttpSink, Relay, emit
from common.pagination import page
from common.problems import Problem

from .cache import UserCache
from .models import IdempotencyKey, OutboxEvent, User
from .schemas import UserBatch, UserCreate, UserOut, UserPage, UserUpdate
from .settings import UserSettings

_USERS = User.__table__
_CACHE_INVALIDATIONS = select(OutboxEvent.payload).where(OutboxEvent.destination == "cache")


def _not_found(user_id: int) -> Problem:
    return Problem(404, f"User {user_id} does not exist.")


def _handle_taken(handle: str | None) -> Problem:
    return Problem(409, f"The handle {handle!r} is taken.", type="urn:chirp:problem:handle-taken")


class UserStore:
    def __init__(self, settings: UserSettings):
        self.db = Database(settings)
        self.cache = UserCache(settings, read_pending=self._pending_invalidations)
        self.outbox = Relay(self.db.engine, OutboxEvent.__table__, "users")
        # Inline: a write answers once Redis and every near cache dropped the
        # user. Retried often: lookups skip the cache for a pending user.
        self.outbox.add_destination("cache", self.cache.apply, inline=True, max_backoff=0.5)
        # The tweet and feed services delete what a deleted user left there.
        self.outbox.add_destination("tweet", HttpSink(settings.tweet_service_url))
        self.outbox.add_destination("feed", HttpSink(settings.feed_service_url))
        self.outbox.install(self.db.sessions)

    # -- reads

    def get(self, user_id: int) -> UserOut:
        user = self.get_many([user_id]).get(user_id)
        if user is None:
            raise _not_found(user_id)
        return user

    def batch(self, user_ids: list[int]) -> UserBatch:
        found = self.get_many(user_ids)
        return UserBatch(data=[found[i] for i in user_ids if i in found],
                         missing=[i for i in user_ids if i not in found])

    def get_many(self, user_ids: list[int]) -> dict[int, UserOut]:
        """The users that exist among `user_ids`: the cache first, then one
        query for the rest, which then fills the cache (misses included)."""
        cached, lookup = self.cache.get_many(user_ids)
        wanted = [i for i in user_ids if i not in cached]
        fetched: dict[int, UserOut] = {}
        if wanted:
            rows = self.db.execute(select(_USERS).where(_USERS.c.id.in_(wanted)))
            fetched = {row.id: UserOut.model_validate(row) for row in rows}
            self.cache.put_many(fetched, [i for i in wanted if i not in fetched], lookup)
        found = {**cached, **fetched}
        return {i: found[i] for i in user_ids if found.get(i) is not None}

    def page(self, after_id: int | None, limit: int) -> UserPage:
        statement = select(_USERS).order_by(_USERS.c.id).limit(limit + 1)
        if after_id:
            statement = statement.where(_USERS.c.id > after_id)
        users, next_cursor = page(self.db.execute(statement), limit)
        return UserPage(data=users, next_cursor=next_cursor)

    def _pending_invalidations(self) -> set[int]:
        return {payload["user_id"] for payload, in self.db.execute(_CACHE_INVALIDATIONS)}

    # -- writes

    def create(self, new: UserCreate, requested: Requested | None) -> UserOut | Replay:
        with self.db.session() as session:
            if requested and (replay := idempotency.claim(session, IdempotencyKey, requested)):
                return replay
            user = User(name=new.name, handle=new.handle)
            session.add(user)
            self._flush_or_conflict(session, new.handle)
            created = UserOut.model_validate(user)
            if requested:
                idempotency.record(session, IdempotencyKey, requested, 201, created)
            session.commit()
        return created

    def update(self, user_id: int, changes: UserUpdate) -> UserOut:
        with self.db.session() as session:
            user = session.get(User, user_id, with_for_update=True)
            if user is None:
                raise _not_found(user_id)
            for field, value in changes.model_dump(exclude_unset=True).items():
                setattr(user, field, value)
            self._flush_or_conflict(session, changes.handle)
            self._invalidate(session, user_id)
            # The feed keeps authors next to the timelines it caches.
            emit(session, "feed", "user.updated", {"user_id": user_id})
            session.commit()
            return UserOut.model_validate(user)

    def delete(self, user_id: int) -> None:
        with self.db.session() as session:
            user = session.get(User, user_id)
            if user is None:
                raise _not_found(user_id)
            session.delete(user)
            self._invalidate(session, user_id)
            for consumer in ("tweet", "feed"):
                emit(session, consumer, "user.deleted", {"user_id": user_id})
            session.commit()

    @staticmethod
    def _flush_or_conflict(session: Session, handle: str | None) -> None:
        try:
            session.flush()
        except IntegrityError:
            raise _handle_taken(handle) from None

    @staticmethod
    def _invalidate(session: Session, user_id: int) -> None:
        """Committed with the write; applied to the cache right after the
        commit, so every replica then reads the user fresh."""
        emit(session, "cache", "user.changed", {"user_id": user_id})

    def close(self) -> None:
        self.outbox.stop()
        self.db.dispose()
