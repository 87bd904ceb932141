"""The tweet service's settings (docs/configuration.md)."""
from __future__ import annotations

from functools import cache

from pydantic import field_validator

from common.settings import ServiceSettings


class TweetSettings(ServiceSettings):
    service_name = "tweet_service"
    port: int = 5002
    # Twice the user service's: a POST mostly waits, on the user service and
    # on the commit, and author checks that wait together share one call.
    gunicorn_threads: int = 8

    user_service_url: str = "http://127.0.0.1:5001"
    user_service_connect_timeout: float = 0.5
    user_service_read_timeout: float = 2.0
    user_service_retries: int = 2
    user_service_pool_size: int = 16
    # How long an author check waits for the call in flight to share the next one.
    user_service_coalesce_wait: float = 0.05
    # Failed calls in a row that open the circuit, and how long it stays open.
    breaker_threshold: int = 5
    breaker_reset_seconds: float = 2.0
    # Where tweet.created and tweet.deleted go (common.outbox).
    feed_service_url: str = "http://127.0.0.1:5003"

    @field_validator("user_service_url")
    @classmethod
    def _no_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")


@cache
def get_settings() -> TweetSettings:
    """The environment's settings, read once per process."""
    return TweetSettings()
