"""Configuration read from the environment, the Flask way: a plain mapping
loaded into `app.config`, which tests override through `create_app(config)`."""
from __future__ import annotations

import os
from pathlib import Path

# `make dev` keeps its SQLite files under `.data/` at the repository root.
REPO_ROOT = Path(__file__).resolve().parents[2]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def default_database_url(service: str) -> str:
    data_dir = Path(os.environ.get("CHIRP_DATA_DIR", REPO_ROOT / ".data"))
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / service}.db"


def base_config(service: str) -> dict:
    """Settings every service has; each service adds its own on top."""
    return {
        "SERVICE_NAME": service,
        "DATABASE_URL": os.environ.get("DATABASE_URL") or default_database_url(service),
        "DB_POOL_SIZE": env_int("DB_POOL_SIZE", 10),
        "DB_POOL_TIMEOUT": env_float("DB_POOL_TIMEOUT", 3.0),
        "DB_CONNECT_TIMEOUT": env_int("DB_CONNECT_TIMEOUT", 3),
        "DB_PING_AFTER_IDLE_SECONDS": env_float("DB_PING_AFTER_IDLE_SECONDS", 1.0),
        "RETRY_AFTER_SECONDS": env_int("RETRY_AFTER_SECONDS", 5),
        "MAX_CONTENT_LENGTH": 64 * 1024,
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
    }
