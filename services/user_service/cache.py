"""The user cache, every tier behind one interface: a copy per worker
process (near_cache.NearCache), then Redis. The store (store.py) reads
through it and the outbox relay applies invalidations to it (`apply`).

Redis holds each user's JSON; the near cache holds the parsed user. Ids that
do not exist are cached too, briefly, as an empty value.

A write does not delete its entry but replaces it with a short-lived
INVALIDATED marker, and lookups only fill an absent key (SET NX). Otherwise
a lookup that read the row just before the write committed could put the
old value back just after the write's delete, for a whole TTL. Redis is
optional: every error is counted and the caller falls back to the database,
and a circuit breaker keeps a frozen Redis from adding its timeout to every
request.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from prometheus_client import Counter
from pybreaker import STATE_CLOSED, CircuitBreaker, CircuitBreakerError, CircuitBreakerListener

from .near_cache import NearCache
from .schemas import UserOut
from .settings import UserSettings
from .subscription import Subscription

log = logging.getLogger(__name__)

CACHE_LOOKUPS = Counter("user_cache_lookups_total",
                        "User cache lookups by result and by the tier that answered: "
                        "near (the worker's own copy) or redis.", ["result", "tier"])
CACHE_ERRORS = Counter("user_cache_errors_total", "Redis errors, by operation.", ["operation"])
NEAR_HITS, REDIS_HITS, REDIS_MISSES, REDIS_ERRORS = (  # bound once: labels() costs a lookup per call
    CACHE_LOOKUPS.labels(result, tier) for result, tier in
    (("hit", "near"), ("hit", "redis"), ("miss", "redis"), ("error", "redis")))

MISSING = b""  # the cached value of an id that does not exist
INVALIDATED = b"!"  # a write just happened: read the database, cache nothing
CHANNEL = "user:v1:invalidations"  # ids of written users, comma-separated, for the near caches


class CacheUnavailable(Exception):
    pass


class _Recoveries(CircuitBreakerListener):
    """Counts the times the breaker closed again: Redis answered after failing."""

    def __init__(self, cache: UserCache):
        self.cache = cache

    def state_change(self, breaker, old, new) -> None:
        if old is not None and old.name != STATE_CLOSED and new.name == STATE_CLOSED:
            self.cache.recoveries += 1


@dataclass(frozen=True)
class Lookup:
    """What a lookup must carry from get_many to put_many."""

    generation: int  # the near cache's, before the database read
    skip: set[int]  # users with an invalidation pending: not cached either way


class UserCache:
    def __init__(self, settings: UserSettings, read_pending: Callable[[], set[int]],
                 invalidation_hold: int = 5):
        url, socket_timeout = settings.redis_url, settings.cache_socket_timeout
        self.ttl = ttl = settings.cache_ttl_seconds
        self.negative_ttl = settings.cache_negative_ttl_seconds
        self.pending = PendingInvalidations(self, read_pending)
        # Longer than a lookup takes from its database read to its SET.
        self.invalidation_hold = invalidation_hold
        # A frozen Redis would add its timeout to every request: after one
        # failure, skip it for a second.
        self.breaker = CircuitBreaker(fail_max=1, reset_timeout=1.0, listeners=[_Recoveries(self)])
        self.recoveries = 0  # times Redis answered again after failing
        self.redis = None
        self.near = None
        if url:
            self.redis = redis.Redis.from_url(
                url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
                retry_on_timeout=False, health_check_interval=30)
        if url and settings.near_cache_size:
            self.near = NearCache(lambda: Subscription(url, CHANNEL, socket_timeout),
                                  size=settings.near_cache_size, ttl=ttl, lease=socket_timeout)

    @staticmethod
    def key(user_id: int) -> str:
        return f"user:v1:{user_id}"

    def _call(self, operation: str, fn):
        """Run one Redis call; None if Redis is off, broken or skipped."""
        if self.redis is None:
            return None
        recoveries = self.recoveries
        try:
            # calling(), not call(): pybreaker holds its lock through a call()
            # and so would let one Redis call at a time through.
            with self.breaker.calling():
                result = fn(self.redis)
        except (redis.RedisError, CircuitBreakerError) as error:
            CACHE_ERRORS.labels(operation).inc()
            cause = error.__context__ if isinstance(error, CircuitBreakerError) else error
            if cause is not None:  # a failed call, not one the open circuit skipped
                log.warning("redis %s failed: %s", operation, cause.__class__.__name__)
            return None
        if operation == "get" and self.recoveries != recoveries:
            # Redis is back after failing, and may hold entries whose
            # invalidation it missed (see PendingInvalidations): not this read.
            return None
        return result

    def get_many(self, ids: list[int]) -> tuple[dict[int, UserOut | None], Lookup]:
        """The users a tier holds among `ids` (None: known not to exist);
        the rest are misses, to read from the database and `put_many`."""
        if self.redis is None:
            return {}, Lookup(0, set())
        skip = self.pending.ids()
        if skip:
            ids = [i for i in ids if i not in skip]
        found, generation = self.near.get_many(ids) if self.near else ({}, 0)
        lookup = Lookup(generation, skip)
        if found:
            NEAR_HITS.inc(len(found))
            ids = [i for i in ids if i not in found]
        if not ids:
            return found, lookup
        values = self._call("get", lambda r: r.mget([self.key(i) for i in ids]))
        if values is None:
            REDIS_ERRORS.inc(len(ids))
            return found, lookup
        from_redis = {i: (UserOut.model_validate_json(v) if v != MISSING else None)
                      for i, v in zip(ids, values) if v is not None and v != INVALIDATED}
        REDIS_HITS.inc(len(from_redis))
        REDIS_MISSES.inc(len(ids) - len(from_redis))
        if self.near:
            self.near.fill({i: u for i, u in from_redis.items() if u is not None}, lookup.generation)
        return {**found, **from_redis}, lookup

    def put_many(self, users: dict[int, UserOut], missing: list[int], lookup: Lookup) -> None:
        """Cache what a lookup read from the database after `get_many`."""
        users = {i: u for i, u in users.items() if i not in lookup.skip}
        missing = [i for i in missing if i not in lookup.skip]
        if self.redis is None or not (users or missing):
            return

        def write(r):
            with r.pipeline(transaction=False) as pipe:
                for user_id, user in users.items():
                    pipe.set(self.key(user_id), user.model_dump_json(), ex=self.ttl, nx=True)
                for user_id in missing:
                    pipe.set(self.key(user_id), MISSING, ex=self.negative_ttl, nx=True)
                pipe.execute()
            return True

        if self._call("set", write) and self.near:
            self.near.fill(users, lookup.generation)

    def invalidate(self, user_ids: list[int]) -> bool:
        """Mark entries invalidated; False if Redis could not be told."""
        if self.redis is None:
            return True

        def mark(r):
            with r.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    pipe.set(self.key(user_id), INVALIDATED, ex=self.invalidation_hold)
                pipe.publish(CHANNEL, b",".join(b"%d" % i for i in user_ids))
                pipe.execute()
            # Redis writes a published message to the subscribers' sockets
            # before it reads another command: once this PING is answered,
            # every near cache will see the message before its next answer.
            r.ping()
            return True

        return bool(self._call("invalidate", mark))

    def apply(self, events: list[dict]) -> None:
        """The outbox sink: apply committed invalidations, or raise to have them retried."""
        if not self.invalidate([event["data"]["user_id"] for event in events]):
            raise CacheUnavailable("Redis did not take the invalidations")


class PendingInvalidations:
    """Users whose invalidation is committed (an outbox row) but not yet
    applied to Redis: Redis may hold their old value, so lookups skip the
    cache for them.

    Normally a write applies its own invalidation before it answers and
    there is none. When Redis was unreachable, the relay applies them once
    it is back; until then this process must not trust Redis for those
    users. It reads the outbox (a plain read) after its Redis connection
    recovers, at most `check_every` seconds after the last look (a process
    idle during the outage), and on every lookup while some are pending."""

    def __init__(self, cache: UserCache, read: Callable[[], set[int]], check_every: float = 1.0):
        self.cache = cache
        self._read = read
        self.check_every = check_every
        self._ids: set[int] = set()
        self._next_check = 0.0
        self._recoveries = 0

    def ids(self) -> set[int]:
        now = time.monotonic()
        if not self._ids and now < self._next_check and self._recoveries == self.cache.recoveries:
            return self._ids
        self._recoveries = self.cache.recoveries
        self._next_check = now + self.check_every
        try:
            self._ids = self._read()
        except Exception as error:  # the database is down too: lookups will say so
            log.warning("pending invalidations unknown: %s", error.__class__.__name__)
        return self._ids
