"""The tweet service's view of the user service: its public HTTP API only.

One pooled keep-alive session per process; connect and read timeouts on
every call; idempotent GETs retried a bounded number of times with backoff;
and a circuit breaker, so that a dead user service costs callers a fast 503
instead of a wait for timeouts.
"""
from __future__ import annotations

import logging

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from common.breaker import CircuitBreaker, CircuitOpen
from common.request_id import HEADER as REQUEST_ID, current_request_id

log = logging.getLogger(__name__)


class UserServiceUnavailable(Exception):
    pass


class UserClient:
    def __init__(self, config: dict):
        self.base_url = config["USER_SERVICE_URL"]
        self.timeout = (config["USER_SERVICE_CONNECT_TIMEOUT"], config["USER_SERVICE_READ_TIMEOUT"])
        self.breaker = CircuitBreaker(config["BREAKER_THRESHOLD"], config["BREAKER_RESET_SECONDS"])
        retry = Retry(total=config["USER_SERVICE_RETRIES"], backoff_factor=0.05,
                      status_forcelist=(502, 503, 504), allowed_methods={"GET"},
                      raise_on_status=False, respect_retry_after_header=False)
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=config["USER_SERVICE_POOL_SIZE"],
                              max_retries=retry)
        self.session = requests.Session()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def _get(self, path: str, **params) -> requests.Response:
        try:
            self.breaker.before_call()
        except CircuitOpen:
            raise UserServiceUnavailable("circuit open") from None
        headers = {REQUEST_ID: current_request_id() or ""}
        try:
            response = self.session.get(self.base_url + path, params=params, headers=headers,
                                        timeout=self.timeout)
        except requests.RequestException as error:
            self.breaker.record_failure()
            log.warning("user service unreachable: %s", error.__class__.__name__)
            raise UserServiceUnavailable(str(error)) from error
        if response.status_code >= 500:
            self.breaker.record_failure()
            log.warning("user service answered %s", response.status_code)
            raise UserServiceUnavailable(f"status {response.status_code}")
        self.breaker.record_success()
        return response

    def user_exists(self, user_id: int) -> bool:
        response = self._get(f"/users/{user_id}")
        if response.status_code not in (200, 404):
            raise UserServiceUnavailable(f"unexpected status {response.status_code}")
        return response.status_code == 200

    def get_users(self, user_ids: list[int]) -> dict[int, dict]:
        """The users that exist among `user_ids` (at most 100), in one call."""
        if not user_ids:
            return {}
        response = self._get("/users", ids=",".join(map(str, user_ids)))
        if response.status_code != 200:
            raise UserServiceUnavailable(f"unexpected status {response.status_code}")
        return {user["id"]: user for user in response.json()["data"]}
