"""A small circuit breaker: after `threshold` consecutive failures the
circuit opens and calls fail fast for `reset_after` seconds; then one trial
call is let through, and its outcome closes or re-opens the circuit.

Per process: each gunicorn worker learns on its own, which keeps it free of
shared state and is enough to turn an outage into fast failures."""
from __future__ import annotations

import threading
import time


class CircuitOpen(Exception):
    pass


class CircuitBreaker:
    def __init__(self, threshold: int = 5, reset_after: float = 5.0):
        self.threshold = threshold
        self.reset_after = reset_after
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def before_call(self) -> None:
        """Raise CircuitOpen unless a call may go ahead now."""
        with self._lock:
            if self._opened_at is None:
                return
            if time.monotonic() - self._opened_at < self.reset_after or self._trial_running:
                raise CircuitOpen()
            self._trial_running = True

    def record_success(self) -> bool:
        """Note a success; True when it closed an open circuit."""
        with self._lock:
            was_open = self._opened_at is not None
            self._failures, self._opened_at, self._trial_running = 0, None, False
            return was_open

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._opened_at is not None or self._failures >= self.threshold:
                self._opened_at = time.monotonic()
