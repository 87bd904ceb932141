"""Concurrent existence checks sent as one batch lookup.

Every POST /tweets asks the user service whether its author exists. While
one such call is in flight, the checks that arrive queue up and leave
together as the next call, the way a database groups concurrent commits:
under load one call answers several requests, and a quiet service still
sends each check at once, with no added wait.

Two rules keep the answers as fresh as one call per request:

- A check is answered only by a call sent after it was queued, so it sees
  every write the user service acknowledged before the request arrived (a
  user deleted a moment ago is refused).
- A check waits at most `max_wait` for the call in flight before it goes
  out on its own, so a slow user service holds no request longer than it
  would without batching, and the circuit breaker still sees every call.

The batch call carries the X-Request-ID of the request that sent it; the
others log, at debug level, whose call answered them.
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterable

from common.request_id import current_request_id

log = logging.getLogger(__name__)


class _Batch:
    def __init__(self):
        self.keys: set[int] = set()
        self.sent = self.done = False
        self.found: set[int] = set()
        self.error: Exception | None = None
        self.request_id: str | None = None


class Coalescer:
    def __init__(self, lookup: Callable[[list[int]], Iterable[int]], max_wait: float):
        self._lookup = lookup  # the keys that exist among those given
        self.max_wait = max_wait
        self._cond = threading.Condition()
        self._queued: _Batch | None = None  # not sent yet: new checks join it
        self._in_flight = 0

    def exists(self, key: int) -> bool:
        deadline = time.monotonic() + self.max_wait
        with self._cond:
            batch = self._queued or self._queue()
            batch.keys.add(key)
            while self._in_flight and not batch.sent and (wait := deadline - time.monotonic()) > 0:
                self._cond.wait(wait)
            lead = not batch.sent
            if lead:
                batch.sent, batch.request_id = True, current_request_id()
                self._queued = None
                self._in_flight += 1
        if lead:
            self._send(batch)
        else:
            with self._cond:
                while not batch.done:
                    self._cond.wait()
            log.debug("user %s checked by the call of request %s", key, batch.request_id)
        if batch.error is not None:
            # One exception object is not raised in several threads at once.
            raise batch.error if lead else copy.copy(batch.error)
        return key in batch.found

    def _queue(self) -> _Batch:
        self._queued = _Batch()
        return self._queued

    def _send(self, batch: _Batch) -> None:
        try:
            batch.found = set(self._lookup(sorted(batch.keys)))
        except Exception as error:  # every request in the batch gets it
            batch.error = error
        finally:
            with self._cond:
                batch.done = True
                self._in_flight -= 1
                self._cond.notify_all()
