"""Cache-aside for user lookups in Redis.

Entries hold the user's JSON exactly as served, so a hit is returned without
touching the database or re-serialising. Ids that do not exist are cached
too, briefly, as an empty value.

A write does not delete its entry but replaces it with a short-lived
INVALIDATED marker, and lookups only fill an absent key (SET NX). Otherwise
a lookup that read the row just before the write committed could put the old
value back just after the write's delete, for a whole TTL. Redis is optional: every error is counted
and the caller falls back to the database, and a circuit breaker keeps a
frozen Redis from adding its timeout to every request.
"""
from __future__ import annotations

import logging
import time

import redis
from prometheus_client import Counter
from sqlalchemy import delete, select

from common.breaker import CircuitBreaker, CircuitOpen

from .models import CacheInvalidation

log = logging.getLogger(__name__)

CACHE_LOOKUPS = Counter("user_cache_lookups_total", "User cache lookups by result.", ["result"])
CACHE_ERRORS = Counter("user_cache_errors_total", "Redis errors, by operation.", ["operation"])

MISSING = b""  # the cached value of an id that does not exist
INVALIDATED = b"!"  # a write just happened: read the database, cache nothing


class UserCache:
    def __init__(self, url: str | None, ttl: int, negative_ttl: int, socket_timeout: float,
                 invalidation_hold: int = 5):
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        # Longer than a lookup takes from its database read to its SET.
        self.invalidation_hold = invalidation_hold
        self.breaker = CircuitBreaker(threshold=1, reset_after=1.0)
        self.on_recovery = None  # called when Redis answers again after failing
        self.redis = None
        if url:
            self.redis = redis.Redis.from_url(
                url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
                retry_on_timeout=False, health_check_interval=30)

    @staticmethod
    def key(user_id: int) -> str:
        return f"user:v1:{user_id}"

    def _call(self, operation: str, fn):
        """Run one Redis call; None if Redis is off, broken or skipped."""
        if self.redis is None:
            return None
        try:
            self.breaker.before_call()
        except CircuitOpen:
            CACHE_ERRORS.labels(operation).inc()
            return None
        try:
            result = fn(self.redis)
        except redis.RedisError as error:
            self.breaker.record_failure()
            CACHE_ERRORS.labels(operation).inc()
            log.warning("redis %s failed: %s", operation, error.__class__.__name__)
            return None
        if self.breaker.record_success() and self.on_recovery:
            # Redis is back after failing: delete the entries whose
            # invalidation it missed. A value read before that may be one.
            self.on_recovery()
            if operation == "get":
                return None
        return result

    def get_many(self, ids: list[int]) -> dict[int, bytes]:
        """Cached JSON (or MISSING) for the ids Redis has; the rest are misses."""
        if self.redis is None:
            return {}
        values = self._call("get", lambda r: r.mget([self.key(i) for i in ids]))
        if values is None:
            CACHE_LOOKUPS.labels("error").inc(len(ids))
            return {}
        found = {i: v for i, v in zip(ids, values) if v is not None and v != INVALIDATED}
        CACHE_LOOKUPS.labels("hit").inc(len(found))
        CACHE_LOOKUPS.labels("miss").inc(len(ids) - len(found))
        return found

    def put_many(self, users: dict[int, bytes], missing: list[int]) -> None:
        if self.redis is None or not (users or missing):
            return

        def write(r):
            with r.pipeline(transaction=False) as pipe:
                for user_id, body in users.items():
                    pipe.set(self.key(user_id), body, ex=self.ttl, nx=True)
                for user_id in missing:
                    pipe.set(self.key(user_id), MISSING, ex=self.negative_ttl, nx=True)
                pipe.execute()
            return True

        self._call("set", write)

    def invalidate(self, user_ids: list[int]) -> bool:
        """Mark entries invalidated; False if Redis could not be told."""
        if self.redis is None:
            return True

        def mark(r):
            with r.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    pipe.set(self.key(user_id), INVALIDATED, ex=self.invalidation_hold)
                pipe.execute()
            return True

        return bool(self._call("invalidate", mark))


class InvalidationReplayer:
    """Makes sure a write that Redis missed cannot be followed by a stale hit.

    A failed invalidation is recorded in the database (CacheInvalidation).
    Every process replays the recorded ones when its Redis connection
    recovers and, at most once a second, whenever it finds any: so a stale
    entry outlives an outage by at most a second, on any replica."""

    def __init__(self, cache: UserCache, sessionmaker, check_every: float = 1.0):
        self.cache = cache
        self.sessionmaker = sessionmaker
        self.check_every = check_every
        self._next_check = 0.0
        cache.on_recovery = self.replay

    def maybe_replay(self) -> None:
        if self.cache.redis is not None and time.monotonic() >= self._next_check:
            self.replay()

    def replay(self) -> None:
        self._next_check = time.monotonic() + self.check_every
        try:
            with self.sessionmaker.begin() as session:
                ids = list(session.scalars(select(CacheInvalidation.user_id).limit(500)))
                if ids and self.cache.invalidate(ids):
                    session.execute(delete(CacheInvalidation).where(CacheInvalidation.user_id.in_(ids)))
        except Exception as error:  # the database may be down too; try again later
            log.warning("cache invalidation replay failed: %s", error.__class__.__name__)
