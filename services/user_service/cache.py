"""Cache-aside for user lookups in Redis.

Two tiers: a copy per worker process (near_cache.NearCache), then Redis.
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
from collections.abc import Callable

import redis
from prometheus_client import Counter
from redis.backoff import NoBackoff
from redis.retry import Retry
from common.breaker import CircuitBreaker, CircuitOpen

from .near_cache import NearCache

log = logging.getLogger(__name__)

CACHE_LOOKUPS = Counter("user_cache_lookups_total",
                        "User cache lookups by result and by the tier that answered: "
                        "near (the worker's own copy) or redis.", ["result", "tier"])
CACHE_ERRORS = Counter("user_cache_errors_total", "Redis errors, by operation.", ["operation"])
NEAR_HITS, REDIS_HITS, REDIS_MISSES, REDIS_ERRORS = (  # bound once: labels() costs a lookup per call
    CACHE_LOOKUPS.labels(result, tier) for result, tier in
    (("hit", "near"), ("hit", "redis"), ("miss", "redis"), ("error", "redis")))

class CacheUnavailable(Exception):
    pass


MISSING = b""  # the cached value of an id that does not exist
INVALIDATED = b"!"  # a write just happened: read the database, cache nothing
CHANNEL = "user:v1:invalidations"  # ids of written users, comma-separated, for the near caches


class UserCache:
    def __init__(self, url: str | None, ttl: int, negative_ttl: int, socket_timeout: float,
                 near_size: int = 0, invalidation_hold: int = 5):
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        # Longer than a lookup takes from its database read to its SET.
        self.invalidation_hold = invalidation_hold
        self.breaker = CircuitBreaker(threshold=1, reset_after=1.0)
        self.recoveries = 0  # times Redis answered again after failing
        self.redis = None
        self.near = None
        if url:
            self.redis = redis.Redis.from_url(
                url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
                retry_on_timeout=False, health_check_interval=30)
        if url and near_size:
            # No retries on the subscription: a reconnect would resubscribe
            # silently, and whatever was published in between would be lost.
            def subscriber() -> redis.Redis:
                return redis.Redis.from_url(
                    url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
                    retry=Retry(NoBackoff(), 0))

            self.near = NearCache(subscriber, CHANNEL, size=near_size, ttl=ttl, lease=socket_timeout)

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
        if self.breaker.record_success():
            # Redis is back after failing, and may hold entries whose
            # invalidation it missed: see PendingInvalidations.
            self.recoveries += 1
            if operation == "get":
                return None
        return result

    def get_many(self, ids: list[int]) -> tuple[dict[int, bytes], int]:
        """Cached JSON (or MISSING) for the ids a tier has; the rest are misses.
        Also the near cache's generation, for put_many."""
        if self.redis is None:
            return {}, 0
        found, generation = self.near.get_many(ids) if self.near else ({}, 0)
        if found:
            NEAR_HITS.inc(len(found))
            if len(found) == len(ids):
                return found, generation
            ids = [i for i in ids if i not in found]
        values = self._call("get", lambda r: r.mget([self.key(i) for i in ids]))
        if values is None:
            REDIS_ERRORS.inc(len(ids))
            return found, generation
        from_redis = {i: v for i, v in zip(ids, values) if v is not None and v != INVALIDATED}
        REDIS_HITS.inc(len(from_redis))
        REDIS_MISSES.inc(len(ids) - len(from_redis))
        if self.near:
            self.near.fill({i: v for i, v in from_redis.items() if v != MISSING}, generation)
        return {**found, **from_redis}, generation

    def put_many(self, users: dict[int, bytes], missing: list[int], generation: int) -> None:
        """Cache what a lookup read from the database; `generation` is what
        get_many returned before the read."""
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

        if self._call("set", write) and self.near:
            self.near.fill(users, generation)

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
