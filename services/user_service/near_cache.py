"""A copy of recently read users inside each worker, in front of Redis.

Redis answers a cached user in one network round trip; this answers from the
worker's memory, which halved a cached lookup's CPU on the benchmark machine
(210 -> 114 us in-process, bench/README.md). A copy per process is only worth
having if it is never staler than Redis itself, across replicas. Three rules
make it so:

- **Writers announce.** After a user write commits, UserCache.invalidate()
  publishes the user's id on a Redis channel, then makes one more round trip:
  Redis hands a published message to every subscriber's socket before it
  reads the publisher's next command. So when the write's response leaves,
  the message is already in every worker's socket buffer. Each worker
  subscribes, and reads its socket before it answers from memory: a read that
  starts after a write's response cannot miss the write.
- **A lookup racing a write cannot put the old user back.** get_many()
  returns a generation, which every invalidation advances; fill() drops what
  a lookup found if an invalidation arrived since it began.
- **Entries are served only while the subscription is proven live**: a PING
  sent on it at most `lease` seconds ago has been answered (replies come in
  order, after every message published before the PING). When that proof
  lapses (Redis frozen, unreachable or restarted, or this worker idle) every
  entry is dropped. The lease is no longer than the writers' Redis timeout,
  so a writer whose announcement did not get through answers only after every
  worker has stopped serving its copy; the write is then replayed from the
  outbox like any missed invalidation (see cache.PendingInvalidations).
"""
from __future__ import annotations

import logging
import select
import socket
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable

import redis
from prometheus_client import Counter

from common.forking import in_forked_children

log = logging.getLogger(__name__)

DROPS = Counter("user_near_cache_drops_total",
                "Times a worker dropped its whole near cache, by reason.", ["reason"])

# Published instead of ids, makes every worker drop its whole copy (after a
# FLUSHDB, say): `PUBLISH user:v1:invalidations '*'`.
DROP_ALL = b"*"


class NearCache:
    def __init__(self, connect: Callable[[], redis.Redis], channel: str, size: int, ttl: float,
                 lease: float, reconnect_every: float = 1.0, keep_for: float = 60.0):
        self._connect = connect  # a Redis client that does not retry: a gap must surface
        self.channel = channel
        self.size = size
        self.ttl = ttl
        self.lease = lease
        self.reconnect_every = reconnect_every
        self.keep_for = keep_for
        self._last_lookup = 0.0
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, tuple[float, bytes]] = OrderedDict()
        self._generation = 0
        self._pubsub: redis.client.PubSub | None = None
        self._socket: socket.socket | None = None  # the subscription's, for a cheap "anything new?"
        self._live_until = 0.0
        self._ping: tuple[bytes, float] | None = None  # (token, sent at) of the PING in flight
        self._pings_sent = 0
        self._last_ping_at = 0.0
        self._next_connect = 0.0
        self._keeper: threading.Thread | None = None
        self._closed = threading.Event()
        # A forked worker must not read its parent's subscription.
        in_forked_children(self, NearCache._after_fork)

    def get_many(self, ids: Iterable[int]) -> tuple[dict[int, bytes], int]:
        """The users held here among `ids`, and the generation to fill() with."""
        now = self._last_lookup = time.monotonic()
        if self._settled(now):
            generation = self._generation
            return self._read(ids, now), generation
        with self._lock:
            if self._keeper is None:
                self._start_keeper()
            found = self._read(ids, now) if self._sync(now) else {}
            return found, self._generation

    def _settled(self, now: float) -> bool:
        """True when there is nothing to apply: the lease holds, the socket
        has nothing unread and no thread is applying what it read. Then the
        entries may be read without the lock, which would otherwise make
        every request queue behind one reading the socket. (Socket first:
        a thread that emptied it holds the lock until it has applied it.)"""
        sock = self._socket
        if sock is None or now >= self._live_until:
            return False
        try:
            readable = select.select((sock,), (), (), 0)[0]
        except (OSError, ValueError):  # closed meanwhile by the keeper: take the lock
            return False
        return not readable and not self._lock.locked()

    def _read(self, ids: Iterable[int], now: float) -> dict[int, bytes]:
        found = {}
        for user_id in ids:
            entry = self._entries.get(user_id)
            if entry is not None and entry[0] > now:
                found[user_id] = entry[1]
        return found

    def fill(self, users: dict[int, bytes], generation: int) -> None:
        """Keep what a lookup found, unless an invalidation arrived since it
        began (`generation`, from get_many): it may be the old user."""
        if not users:
            return
        with self._lock:
            now = time.monotonic()
            if not self._sync(now) or generation != self._generation:
                return
            for user_id, body in users.items():
                self._entries[user_id] = (now + self.ttl, body)
                self._entries.move_to_end(user_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            if self._pubsub is not None:
                self._unsubscribe(time.monotonic())

    def _start_keeper(self) -> None:
        """A thread that subscribes, and keeps the lease between requests so
        a pause in traffic does not drop the copy. Subscribing is its job
        alone, outside the lock: against a frozen Redis it takes a timeout,
        which no request should wait for. Its PINGs cost a worker about 1 %
        of a core, so it stops after `keep_for` seconds without a lookup; the
        next lookup starts it again (and finds the copy dropped)."""
        this, tick, closed = weakref.ref(self), self.lease / 4, self._closed

        def keep() -> None:
            while (near := this()) is not None:
                now = time.monotonic()
                if now - near._last_lookup > near.keep_for:
                    near._keeper = None
                    return
                if near._pubsub is None and now >= near._next_connect:
                    near._subscribe(now)
                with near._lock:
                    near._sync(time.monotonic())
                del near
                if closed.wait(tick):
                    return

        self._keeper = threading.Thread(target=keep, name="near-cache-keeper", daemon=True)
        self._keeper.start()

        self._keeper = threading.Thread(target=keep, name="near-cache-keeper", daemon=True)
        self._keeper.start()

    def _subscribe(self, now: float) -> None:
        self._next_connect = now + self.reconnect_every
        pubsub = self._connect().pubsub()
        try:
            pubsub.subscribe(self.channel)
        except (redis.RedisError, OSError) as error:
            log.warning("cannot subscribe to user invalidations: %s", error.__class__.__name__)
            pubsub.close()
            return
        with self._lock:
            if self._closed.is_set():
                pubsub.close()
                return
            self._pubsub = pubsub
            self._socket = getattr(pubsub.connection, "_sock", None)  # None: always take the lock
            self._drop_all("subscribed")  # what is held was not covered by this subscription
            self._sync(time.monotonic())  # sends the first PING

    # -- the subscription (every method below runs under self._lock)

    def _sync(self, now: float) -> bool:
        """Apply what Redis sent; True while entries may be served."""
        if self._pubsub is None:
            return False
        try:
            while (message := self._pubsub.get_message(timeout=0)) is not None:
                self._apply(message)
            if self._ping is None:
                if now - self._last_ping_at >= self.lease / 4:
                    self._send_ping(now)
            elif now - self._ping[1] > self.reconnect_every:
                raise redis.TimeoutError("the subscription stopped answering PING")
        except (redis.RedisError, OSError) as error:
            log.warning("user invalidation subscription lost: %s", error.__class__.__name__)
            self._unsubscribe(now)
            return False
        if now >= self._live_until:
            self._drop_all("lease lapsed")
            return False
        return True

    def _apply(self, message: dict) -> None:
        if message["type"] == "message":
            if message["data"] == DROP_ALL:
                self._entries.clear()
            for user_id in message["data"].split(b","):
                if user_id.isdigit():
                    self._entries.pop(int(user_id), None)
            self._generation += 1
        elif message["type"] == "pong" and self._ping and message["data"] == self._ping[0]:
            self._live_until = self._ping[1] + self.lease
            self._ping = None

    def _send_ping(self, now: float) -> None:
        self._pings_sent += 1
        token = b"%d" % self._pings_sent
        self._pubsub.ping(token)
        self._ping = (token, now)
        self._last_ping_at = now

    def _unsubscribe(self, now: float) -> None:
        try:
            self._pubsub.close()
        except (redis.RedisError, OSError):
            pass
        self._forget_subscription()
        self._next_connect = now + self.reconnect_every

    def _forget_subscription(self) -> None:
        self._pubsub, self._socket, self._ping, self._live_until = None, None, None, 0.0
        self._drop_all("subscription lost")

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._keeper = None  # threads do not survive a fork
        self._forget_subscription()

    def _drop_all(self, reason: str) -> None:
        if self._entries:
            DROPS.labels(reason).inc()
            self._entries.clear()
        self._generation += 1
