"""A copy of recently read users inside each worker, in front of Redis.

Redis answers a cached user in one network round trip; this answers from the
worker's memory (what that is worth: bench/README.md). A copy per process is
only worth having if it is never staler than Redis itself, across replicas.
Three rules make it so:

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
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import Counter

from common.forking import in_forked_children

from .subscription import Subscription, SubscriptionLost

log = logging.getLogger(__name__)

DROPS = Counter("user_near_cache_drops_total",
                "Times a worker dropped its whole near cache, by reason.", ["reason"])

# Published instead of ids, makes every worker drop its whole copy (after a
# FLUSHDB, say): `PUBLISH user:v1:invalidations '*'`.
DROP_ALL = b"*"


class NearCache:
    def __init__(self, subscribe: Callable[[], Subscription], size: int, ttl: float,
                 lease: float, reconnect_every: float = 1.0, keep_for: float = 60.0):
        self._subscribe_to_redis = subscribe  # raises SubscriptionLost if it cannot
        self.size = size
        self.ttl = ttl
        self.lease = lease
        self.reconnect_every = reconnect_every
        self.keep_for = keep_for
        self._last_lookup = 0.0
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, tuple[float, Any]] = OrderedDict()
        self._generation = 0
        self._subscription: Subscription | None = None
        self._live_until = 0.0
        self._ping: tuple[bytes, float] | None = None  # (token, sent at) of the PING in flight
        self._pings_sent = 0
        self._last_ping_at = 0.0
        self._next_connect = 0.0
        self._keeper: threading.Thread | None = None
        self._closed = threading.Event()
        self.keeper_name = f"near-cache-keeper-{id(self):x}"
        # A forked worker must not read its parent's subscription.
        in_forked_children(self, NearCache._after_fork)

    def get_many(self, ids: Iterable[int]) -> tuple[dict[int, Any], int]:
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
        subscription = self._subscription
        if subscription is None or now >= self._live_until:
            return False
        if self._ping is None and now - self._last_ping_at >= self.lease / 4:
            # A PING is due: traffic renews the lease itself, rather than
            # count on the keeper thread getting the GIL in time under load.
            return False
        try:
            readable = select.select((subscription,), (), (), 0)[0]
        except (OSError, ValueError):  # closed meanwhile by the keeper: take the lock
            return False
        return not readable and not self._lock.locked()

    def _read(self, ids: Iterable[int], now: float) -> dict[int, Any]:
        found = {}
        for user_id in ids:
            entry = self._entries.get(user_id)
            if entry is not None and entry[0] > now:
                found[user_id] = entry[1]
        return found

    def fill(self, users: dict[int, Any], generation: int) -> None:
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
            if self._subscription is not None:
                self._unsubscribe(time.monotonic())

    def _start_keeper(self) -> None:
        """A thread that subscribes, and keeps the lease between requests so
        a pause in traffic does not drop the copy. Subscribing is its job
        alone, outside the lock: against a frozen Redis it takes a timeout,
        which no request should wait for. Its PINGs cost CPU, so it stops
        after `keep_for` seconds without a lookup; the next lookup starts it
        again (and finds the copy dropped)."""
        this, tick, closed = weakref.ref(self), self.lease / 4, self._closed

        def keep() -> None:
            while (near := this()) is not None:
                now = time.monotonic()
                if now - near._last_lookup > near.keep_for:
                    near._keeper = None
                    return
                with near._lock:
                    resubscribe = near._subscription is None and now >= near._next_connect
                if resubscribe:
                    near._subscribe(now)
                with near._lock:
                    near._sync(time.monotonic())
                del near
                if closed.wait(tick):
                    return

        self._keeper = threading.Thread(target=keep, name=self.keeper_name, daemon=True)
        self._keeper.start()

    def _subscribe(self, now: float) -> None:
        self._next_connect = now + self.reconnect_every
        try:
            subscription = self._subscribe_to_redis()
        except SubscriptionLost as error:
            log.warning("cannot subscribe to user invalidations: %s", error)
            return
        with self._lock:
            if self._closed.is_set():
                subscription.close()
                return
            self._subscription = subscription
            self._drop_all("subscribed")  # what is held was not covered by this subscription
            self._sync(time.monotonic())  # sends the first PING

    # -- the subscription (every method below runs under self._lock)

    def _sync(self, now: float) -> bool:
        """Apply what Redis sent; True while entries may be served."""
        if self._subscription is None:
            return False
        try:
            for reply in self._subscription.replies():
                self._apply(reply)
            if self._ping is None:
                if now - self._last_ping_at >= self.lease / 4:
                    self._send_ping(now)
            elif now - self._ping[1] > self.reconnect_every:
                raise SubscriptionLost("the subscription stopped answering PING")
        except SubscriptionLost as error:
            log.warning("user invalidation subscription lost: %s", error)
            self._unsubscribe(now)
            return False
        if now >= self._live_until:
            self._drop_all("lease lapsed")
            return False
        return True

    def _apply(self, reply: list) -> None:
        kind, data = reply[0], reply[-1]
        if kind == b"message":
            if data == DROP_ALL:
                self._entries.clear()
            for user_id in data.split(b","):
                if user_id.isdigit():
                    self._entries.pop(int(user_id), None)
            self._generation += 1
        elif kind == b"pong" and self._ping and data == self._ping[0]:
            self._live_until = self._ping[1] + self.lease
            self._ping = None

    def _send_ping(self, now: float) -> None:
        self._pings_sent += 1
        token = b"%d" % self._pings_sent
        self._subscription.send("PING", token)
        self._ping = (token, now)
        self._last_ping_at = now

    def _unsubscribe(self, now: float) -> None:
        self._subscription.close()
        self._forget_subscription()
        self._next_connect = now + self.reconnect_every

    def _forget_subscription(self) -> None:
        self._subscription, self._ping, self._live_until = None, None, 0.0
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
