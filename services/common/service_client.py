"""A client for another Chirp service's HTTP API.

One pooled keep-alive connection pool per process; connect and read
timeouts on every call; idempotent GETs retried a bounded number of times
with backoff; and a circuit breaker, so that a dead service costs callers a
fast 503 instead of a wait for timeouts. Every call carries the current
X-Request-ID.

urllib3 directly rather than requests on top of it: requests re-reads the
environment (proxies, .netrc) and rebuilds its request on every call, which
costs about half a millisecond of CPU per call.
"""
from __future__ import annotations

import logging
import os

import orjson
import urllib3
from urllib3.exceptions import HTTPError
from urllib3.util.retry import Retry

from .breaker import CircuitBreaker, CircuitOpen
from .config import env_float, env_int
from .request_id import HEADER as REQUEST_ID, current_request_id

log = logging.getLogger(__name__)


class ServiceUnavailable(Exception):
    """The other service could not be reached, or answered 5xx."""


class ServiceClient:
    def __init__(self, name: str, base_url: str, *, connect_timeout: float, read_timeout: float,
                 retries: int, pool_size: int, breaker_threshold: int, breaker_reset: float):
        self.name = name
        # A service behind a path (http://gateway/chirp) keeps it.
        self.path_prefix = urllib3.util.parse_url(base_url).path or ""
        self.breaker = CircuitBreaker(breaker_threshold, breaker_reset)
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
        """GET `path`; ServiceUnavailable when unreachable or on a 5xx."""
        try:
            self.breaker.before_call()
        except CircuitOpen:
            raise ServiceUnavailable(f"{self.name}: circuit open") from None
        headers = {REQUEST_ID: current_request_id() or ""}
        try:
            response = self.pool.request("GET", self.path_prefix + path, fields=params or None,
                                         headers=headers)
        except (HTTPError, OSError) as error:
            self.breaker.record_failure()
            log.warning("%s unreachable: %s", self.name, error.__class__.__name__)
            raise ServiceUnavailable(str(error)) from error
        if response.status >= 500:
            self.breaker.record_failure()
            log.warning("%s answered %s", self.name, response.status)
            raise ServiceUnavailable(f"{self.name}: status {response.status}")
        self.breaker.record_success()
        return response

    def get_json(self, path: str, **params) -> dict:
        """The JSON body of a 200 answer; anything else is ServiceUnavailable."""
        response = self.get(path, **params)
        if response.status != 200:
            raise ServiceUnavailable(f"{self.name}: unexpected status {response.status}")
        return orjson.loads(response.data)


def client_from_config(config: dict, name: str, prefix: str) -> ServiceClient:
    """A ServiceClient from the `<prefix>_URL`, `_CONNECT_TIMEOUT`, `_READ_TIMEOUT`,
    `_RETRIES` and `_POOL_SIZE` settings and the shared BREAKER_* ones."""
    return ServiceClient(
        name, config[f"{prefix}_URL"],
        connect_timeout=config[f"{prefix}_CONNECT_TIMEOUT"],
        read_timeout=config[f"{prefix}_READ_TIMEOUT"],
        retries=config[f"{prefix}_RETRIES"], pool_size=config[f"{prefix}_POOL_SIZE"],
        breaker_threshold=config["BREAKER_THRESHOLD"], breaker_reset=config["BREAKER_RESET_SECONDS"])


def service_settings(prefix: str, default_url: str) -> dict:
    """The settings client_from_config reads, from the environment."""
    return {
        f"{prefix}_URL": os.environ.get(f"{prefix}_URL", default_url).rstrip("/"),
        f"{prefix}_CONNECT_TIMEOUT": env_float(f"{prefix}_CONNECT_TIMEOUT", 0.5),
        f"{prefix}_READ_TIMEOUT": env_float(f"{prefix}_READ_TIMEOUT", 2.0),
        f"{prefix}_RETRIES": env_int(f"{prefix}_RETRIES", 2),
        f"{prefix}_POOL_SIZE": env_int(f"{prefix}_POOL_SIZE", 16),
    }
