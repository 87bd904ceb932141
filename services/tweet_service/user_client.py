"""The tweet service's view of the user service: its public HTTP API only,
through a pooled client with timeouts, retries and a circuit breaker
(common.service_client). Author checks made at the same time share one
batch lookup (coalescing.py).
"""
from __future__ import annotations

from common.service_client import ServiceClient, ServiceUnavailable

from .coalescing import Coalescer
from .settings import TweetSettings

UserServiceUnavailable = ServiceUnavailable


class UserClient:
    def __init__(self, settings: TweetSettings):
        self._author_checks = Coalescer(lambda ids: self.get_users(ids).keys(),
                                        max_wait=settings.user_service_coalesce_wait)
        self.http = ServiceClient(
            "user service", settings.user_service_url,
            connect_timeout=settings.user_service_connect_timeout,
            read_timeout=settings.user_service_read_timeout,
            retries=settings.user_service_retries, pool_size=settings.user_service_pool_size,
            breaker_threshold=settings.breaker_threshold,
            breaker_reset=settings.breaker_reset_seconds)

    def close(self) -> None:
        """Close the pooled keep-alive connections."""
        self.http.close()

    def user_exists(self, user_id: int) -> bool:
        """Whether the user exists, asked of the user service now; concurrent
        checks share one batch lookup (see coalescing.py)."""
        return self._author_checks.exists(user_id)

    def get_users(self, user_ids: list[int]) -> dict[int, dict]:
        """The users that exist among `user_ids`, in one call per 100 ids."""
        return {user["id"]: user for user in self.http.get_batch("/users", user_ids)}
