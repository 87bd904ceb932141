"""The user service's settings (the README's configuration table)."""
from __future__ import annotations

from functools import cache

from common.settings import ServiceSettings


class UserSettings(ServiceSettings):
    service_name = "user_service"

    # Empty: no cache at all (`make dev`).
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


@cache
def get_settings() -> UserSettings:
    """The environment's settings, read once per process."""
    return UserSettings()
