"""The tweet service's view of the user service: its public HTTP API only.

One pooled keep-alive connection pool per process; connect and read
timeouts on every call; idempotent GETs retried a bounded number of times
with backoff; and a circuit breaker, so that a dead user service costs
callers a fast 503 instead of a wait for timeouts. Author checks made at the
same time share one batch lookup (coalescing.py).

urllib3 directly rather than requests on top of it: requests re-reads the
environment (proxies, .netrc) and rebuilds its request on every call
(bench/README.md: what that cost).
"""
from __future__ import annotations

import logging

import orjson
import urllib3
from pybreaker import CircuitBreaker, CircuitBreakerError
from urllib3.exceptions import HTTPError
from urllib3.util.retry import Retry

from common.request_id import HEADER as REQUEST_ID, current_request_id

from .coalescing import Coalescer
from .settings import TweetSettings

log = logging.getLogger(__name__)

MAX_BATCH = 100  # ids per batch lookup, the user service's limit


class UserServiceUnavailable(Exception):
    pass


class UserClient:
    def __init__(self, settings: TweetSettings):
        self._author_checks = Coalescer(lambda ids: self.get_users(ids).keys(),
                                        max_wait=settings.user_service_coalesce_wait)
        # A user service behind a path (http://gateway/chirp) keeps it.
        self.path_prefix = urllib3.util.parse_url(settings.user_service_url).path or ""
        self.breaker = CircuitBreaker(fail_max=settings.breaker_threshold,
                                      reset_timeout=settings.breaker_reset_seconds)
        retry = Retry(total=settings.user_service_retries, backoff_factor=0.05,
                      status_forcelist=(502, 503, 504), allowed_methods={"GET"},
                      raise_on_status=False, respect_retry_after_header=False)
        # One host: its connection pool directly, without a PoolManager
        # parsing every URL to pick the pool.
        self.pool = urllib3.connection_from_url(
            settings.user_service_url, maxsize=settings.user_service_pool_size, retries=retry,
            timeout=urllib3.Timeout(connect=settings.user_service_connect_timeout,
                                    read=settings.user_service_read_timeout))

    def close(self) -> None:
        """Close the pooled keep-alive connections."""
        self.pool.close()

    def _get(self, path: str, **params) -> urllib3.BaseHTTPResponse:
        try:
            # calling(), not call(): pybreaker holds its lock through a call()
            # and so would let one request at a time through.
            with self.breaker.calling():
                return self._request(path, params)
        except CircuitBreakerError:
            raise UserServiceUnavailable("circuit open") from None

    def _request(self, path: str, params: dict) -> urllib3.BaseHTTPResponse:
        """One call; raises UserServiceUnavailable (a failure to the breaker)."""
        headers = {REQUEST_ID: current_request_id() or ""}
        try:
            response = self.pool.request("GET", self.path_prefix + path, fields=params or None,
                                         headers=headers)
        except (HTTPError, OSError) as error:
            log.warning("user service unreachable: %s", error.__class__.__name__)
            raise UserServiceUnavailable(str(error)) from error
        if response.status >= 500:
            log.warning("user service answered %s", response.status)
            raise UserServiceUnavailable(f"status {response.status}")
        return response

    def user_exists(self, user_id: int) -> bool:
        """Whether the user exists, asked of the user service now; concurrent
        checks share one batch lookup (see coalescing.py)."""
        return self._author_checks.exists(user_id)

    def get_users(self, user_ids: list[int]) -> dict[int, dict]:
        """The users that exist among `user_ids`, in one call per MAX_BATCH."""
        users: dict[int, dict] = {}
        for start in range(0, len(user_ids), MAX_BATCH):
            ids = ",".join(map(str, user_ids[start:start + MAX_BATCH]))
            response = self._get("/users", ids=ids)
            if response.status != 200:
                raise UserServiceUnavailable(f"unexpected status {response.status}")
            users.update((user["id"], user) for user in orjson.loads(response.data)["data"])
        return users
