"""The feed service's settings (docs/configuration.md)."""
from __future__ import annotations

from functools import cache

from pydantic import Field, field_validator

from common.settings import ServiceSettings


class FeedSettings(ServiceSettings):
    service_name = "feed_service"
    port: int = 5003
    # A timeline read mostly waits, on Redis and the other services: the
    # tweet service's thread count.
    gunicorn_threads: int = 8

    user_service_url: str = "http://127.0.0.1:5001"
    tweet_service_url: str = "http://127.0.0.1:5002"
    # Both clients: timeouts, retries of GETs, keep-alive pool per process.
    service_connect_timeout: float = 0.5
    service_read_timeout: float = 2.0
    service_retries: int = 2
    service_pool_size: int = 16
    # Failed calls in a row that open a client's circuit, and how long it stays open.
    breaker_threshold: int = 5
    breaker_reset_seconds: float = 2.0
    # The timeline cache; empty: every timeline is merged at read time (`make dev`).
    redis_url: str | None = None
    redis_socket_timeout: float = 0.5
    # Entries each cached timeline keeps; older ones are merged at read time.
    timeline_size: int = Field(800, ge=1)
    # false: no timeline is cached, every one is merged at read time.
    fanout_enabled: bool = True
    # Authors with more followers are merged into timelines at read time
    # instead of being fanned out to each follower on write.
    fanout_max_followers: int = Field(10_000, ge=0)

    @field_validator("user_service_url", "tweet_service_url")
    @classmethod
    def _no_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")


@cache
def get_settings() -> FeedSettings:
    """The environment's settings, read once per process."""
    return FeedSettings()
