"""The user service's settings (docs/configuration.md)."""
from __future__ import annotations

from functools import cache

from pydantic import field_validator

from common.settings import ServiceSettings


class UserSettings(ServiceSettings):
    service_name = "user_service"
    port: int = 5001

    # Unset or empty: no cache at all (`make dev`).
    redis_url: str | None = None
    cache_ttl_seconds: int = 300
    cache_negative_ttl_seconds: int = 5
    # Redis is a shortcut, never worth a slow request: fail fast, use the database.
    cache_socket_timeout: float = 0.1
    # Users each worker keeps in memory in front of Redis; 0 turns it off.
    near_cache_size: int = 20_000
    # Where user.deleted goes (common.outbox): both delete what the user left.
    tweet_service_url: str = "http://127.0.0.1:5002"
    feed_service_url: str = "http://127.0.0.1:5003"

    @field_validator("redis_url")
    @classmethod
    def _empty_is_none(cls, url: str | None) -> str | None:
        return url or None


@cache
def get_settings() -> UserSettings:
    """The environment's settings, read once per process."""
    return UserSettings()
