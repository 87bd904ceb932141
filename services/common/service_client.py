"""A client for another Chirp service's HTTP API (GETs only).

One pooled keep-alive connection pool per process; connect and read
timeouts on every call; idempotent GETs retried a bounded number of times
with backoff; and a circuit breaker, so that a dead service costs callers a
fast 503 instead of a wait for timeouts. Every call carries the current
X-Request-ID.

urllib3 directly rather than requests on top of it: requests re-reads the
environment (proxies, .netrc) and rebuilds its request on every call, a
measurable share of a POST /tweets' CPU.
"""
from __future__ import annotations

import logging

import orjson
import urllib3
from pybreaker import CircuitBreaker, CircuitBreakerError
from urllib3.exceptions import HTTPError
from urllib3.util.retry import Retry

from .request_id import HEADER as REQUEST_ID, current_request_id

log = logging.getLogger(__name__)


MAX_BATCH = 100  # ids per batch lookup (`?ids=`), every service's limit


class ServiceUnavailable(Exception):
    """The other service could not be reached, or answered 5xx."""


class ServiceClient:
    def __init__(self, name: str, base_url: str, *, connect_timeout: float, read_timeout: float,
                 retries: int, pool_size: int, breaker_threshold: int, breaker_reset: float):
        self.name = name
        # A service behind a path (http://gateway/chirp) keeps it.
        self.path_prefix = urllib3.util.parse_url(base_url).path or ""
        self.breaker = CircuitBreaker(fail_max=breaker_threshold, reset_timeout=breaker_reset)
        retry = Retry(total=retries, backoff_factor=0.05, status_forcelist=(502, 503, 504),
                      allowed_methods={"GET"}, raise_on_status=False,
                      respect_retry_after_header=False)
        # One host: its connection pool directly, without a PoolManager
        # parsing every URL to pick the pool.
        self.pool = urllib3.connection_from_url(
            base_url, maxsize=pool_size, retries=retry,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout))

    def close(self) -> None:
        """Close the pooled keep-alive connections."""
        self.pool.close()

    def get(self, path: str, **params) -> urllib3.BaseHTTPResponse:
        """GET `path`; ServiceUnavailable when unreachable, on a 5xx or while
        the circuit is open."""
        try:
            # calling(), not call(): pybreaker holds its lock through a call()
            # and so would let one request at a time through.
            with self.breaker.calling():
                return self._request(path, params)
        except CircuitBreakerError:
            raise ServiceUnavailable(f"{self.name}: circuit open") from None

    def _request(self, path: str, params: dict) -> urllib3.BaseHTTPResponse:
        """One call; raises ServiceUnavailable (a failure to the breaker)."""
        headers = {REQUEST_ID: current_request_id() or ""}
        try:
            response = self.pool.request("GET", self.path_prefix + path, fields=params or None,
                                         headers=headers)
        except (HTTPError, OSError) as error:
            log.warning("%s unreachable: %s", self.name, error.__class__.__name__)
            raise ServiceUnavailable(f"{self.name}: {error}") from error
        if response.status >= 500:
            log.warning("%s answered %s", self.name, response.status)
            raise ServiceUnavailable(f"{self.name}: status {response.status}")
        return response

    def get_json(self, path: str, **params) -> dict:
        """The JSON body of a 200 answer; anything else is ServiceUnavailable."""
        response = self.get(path, **params)
        if response.status != 200:
            raise ServiceUnavailable(f"{self.name}: unexpected status {response.status}")
        return orjson.loads(response.data)

    def get_batch(self, path: str, ids: list[int], **params) -> list[dict]:
        """The `data` of `GET path?ids=...` for any number of ids, in order:
        one call per MAX_BATCH ids."""
        found: list[dict] = []
        for start in range(0, len(ids), MAX_BATCH):
            chunk = ",".join(map(str, ids[start:start + MAX_BATCH]))
            found += self.get_json(path, ids=chunk, **params)["data"]
        return found
