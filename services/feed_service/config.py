"""Feed service settings (see the README's configuration table)."""
from __future__ import annotations

import os

from common.config import base_config, env_float, env_int
from common.service_client import service_settings


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def load_config() -> dict:
    return {
        **base_config("feed_service"),
        **service_settings("USER_SERVICE", "http://127.0.0.1:5001"),
        **service_settings("TWEET_SERVICE", "http://127.0.0.1:5002"),
        "BREAKER_THRESHOLD": env_int("BREAKER_THRESHOLD", 5),
        "BREAKER_RESET_SECONDS": env_float("BREAKER_RESET_SECONDS", 2.0),
        # The timelines cache; without it every timeline is merged at read time.
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "REDIS_SOCKET_TIMEOUT": env_float("REDIS_SOCKET_TIMEOUT", 0.5),
        # Entries each cached timeline keeps; older ones are merged at read time.
        "TIMELINE_SIZE": env_int("TIMELINE_SIZE", 800),
        # Off: no timeline is cached, every one is merged at read time.
        "FANOUT_ENABLED": env_bool("FANOUT_ENABLED", True),
        # Authors with more followers are merged into timelines at read time
        # instead of being fanned out to each follower on write.
        "FANOUT_MAX_FOLLOWERS": env_int("FANOUT_MAX_FOLLOWERS", 10_000),
    }
