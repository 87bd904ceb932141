"""Concurrent existence checks sent as one batch lookup.

Every POST /tweets asks the user service whether its author exists. While
one such call is in flight, the checks that arrive queue up and leave
together as the next call, the way a database groups concurrent commits:
under load one call answers several requests, and a quiet service still
sends each check at once, with no added wait.

Two rules:

- A check is answered only by a call sent after it was queued, so it sees
  every write the user service acknowledged before the request arrived (a
  user deleted a moment ago is refused): as fresh as one call per request.
- A queued batch waits at most `max_wait` for the call in flight, then goes
  out anyway, so a slow user service holds no request much longer than it
  would without batching, and the circuit breaker still sees every call.

The batch call carries the X-Request-ID of the request that sent it; the
others log, at debug level, whose call answered them.

Each batch has its own event, so a call's answer wakes only the checks it
answers and the one check waiting to send the next batch, not every thread
waiting.
"""
from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterable

from common.request_id import current_request_id

log = logging.getLogger(__name__)


class _Batch:
    def __init__(self):
        self.keys: set[int] = set()
        self.done = threading.Event()
        self.found: set[int] = set()
        self.error: Exception | None = None
        self.request_id: str | None = None


class Coalescer:
    def __init__(self, lookup: Callable[[list[int]], Iterable[int]], max_wait: float):
        self._lookup = lookup  # the keys that exist among those given
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._queued: _Batch | None = None  # not sent yet: new checks join it
        self._sent: _Batch | None = None  # the last batch sent

    def exists(self, key: int) -> bool:
        with self._lock:
            batch = self._queued
            lead = batch is None  # the first check of a batch sends it
            if lead:
                batch = self._queued = _Batch()
                ahead = self._sent
            batch.keys.add(key)
        if lead:
            if ahead is not None:
                ahead.done.wait(self.max_wait)  # at once if it is answered already
            with self._lock:
                self._queued, self._sent = None, batch  # no check joins it any more
            self._send(batch)
        else:
            batch.done.wait()
            log.debug("user %s checked by the call of request %s", key, batch.request_id)
        if batch.error is not None:
            # One exception object is not raised in several threads at once.
            raise batch.error if lead else copy.copy(batch.error)
        return key in batch.found

    def _send(self, batch: _Batch) -> None:
        batch.request_id = current_request_id()
        try:
            batch.found = set(self._lookup(sorted(batch.keys)))
        except Exception as error:  # every request in the batch gets it
            batch.error = error
        finally:
            batch.done.set()
