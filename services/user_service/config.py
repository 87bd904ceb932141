"""User service settings (see the README's configuration table)."""
from __future__ import annotations

import os

from common.config import base_config, env_float, env_int


def load_config() -> dict:
    return {
        **base_config("user_service"),
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "CACHE_TTL_SECONDS": env_int("CACHE_TTL_SECONDS", 300),
        "CACHE_NEGATIVE_TTL_SECONDS": env_int("CACHE_NEGATIVE_TTL_SECONDS", 5),
        # Redis is a shortcut, never worth a slow request: fail fast, use the database.
        "CACHE_SOCKET_TIMEOUT": env_float("CACHE_SOCKET_TIMEOUT", 0.1),
        # Users each worker keeps in memory in front of Redis; 0 turns it off.
        "NEAR_CACHE_SIZE": env_int("NEAR_CACHE_SIZE", 20_000),
        # Where user.deleted goes (common.outbox): both delete what the user left.
        "TWEET_SERVICE_URL": os.environ.get("TWEET_SERVICE_URL", "http://127.0.0.1:5002").rstrip("/"),
        "FEED_SERVICE_URL": os.environ.get("FEED_SERVICE_URL", "http://127.0.0.1:5003").rstrip("/"),
    }
