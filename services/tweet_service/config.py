"""Tweet service settings (see the README's configuration table)."""
from __future__ import annotations

import os

from common.config import base_config, env_float, env_int


def load_config() -> dict:
    return {
        **base_config("tweet_service"),
        "USER_SERVICE_URL": os.environ.get("USER_SERVICE_URL", "http://127.0.0.1:5001").rstrip("/"),
        # Where tweet.created and tweet.deleted go (common.outbox).
        "FEED_SERVICE_URL": os.environ.get("FEED_SERVICE_URL", "http://127.0.0.1:5003").rstrip("/"),
        "USER_SERVICE_CONNECT_TIMEOUT": env_float("USER_SERVICE_CONNECT_TIMEOUT", 0.5),
        "USER_SERVICE_READ_TIMEOUT": env_float("USER_SERVICE_READ_TIMEOUT", 2.0),
        "USER_SERVICE_RETRIES": env_int("USER_SERVICE_RETRIES", 2),
        "USER_SERVICE_POOL_SIZE": env_int("USER_SERVICE_POOL_SIZE", 16),
        # How long an author check waits for the call in flight to share the next one.
        "USER_SERVICE_COALESCE_WAIT": env_float("USER_SERVICE_COALESCE_WAIT", 0.05),
        "BREAKER_THRESHOLD": env_int("BREAKER_THRESHOLD", 5),
        "BREAKER_RESET_SECONDS": env_float("BREAKER_RESET_SECONDS", 2.0),
    }
