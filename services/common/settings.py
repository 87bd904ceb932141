"""Settings every service reads from its environment, typed, in one object.

Each service subclasses `ServiceSettings` (user_service/settings.py,
tweet_service/settings.py) and reads it once per process (`get_settings`):
the app and the service's gunicorn.conf.py read the same object. Tests build
their own: `create_app(UserSettings(database_url=...))`. An environment
variable is the field's name in capitals.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# `make dev` keeps its SQLite files under `.data/` at the repository root.
REPO_ROOT = Path(__file__).resolve().parents[2]


def default_database_url(service: str) -> str:
    data_dir = Path(os.environ.get("CHIRP_DATA_DIR", REPO_ROOT / ".data"))
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / service}.db"


class ServerSettings(BaseSettings):
    """How gunicorn serves the app: a service's gunicorn.conf.py applies
    these (common/gunicorn_settings.py, which says why each default)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    host: str = "0.0.0.0"
    port: int = 8000  # each service has its own
    web_concurrency: int = Field(2, ge=1)
    gunicorn_threads: int = Field(4, ge=1)
    gunicorn_reuse_port: bool = sys.platform.startswith("linux")
    gunicorn_worker_connections: int = 1000
    gunicorn_timeout: int = 30
    gunicorn_graceful_timeout: int = 20
    gunicorn_keepalive: int = 5
    gunicorn_backlog: int = 2048
    gunicorn_access_log: str = "-"  # "-": stdout; empty: off
    log_level: str = "INFO"


class ServiceSettings(ServerSettings):
    service_name: ClassVar[str]

    # Empty: a SQLite file under CHIRP_DATA_DIR (`make dev`).
    database_url: str = Field("", validate_default=True)
    db_pool_size: int = Field(10, ge=1)
    db_pool_timeout: float = 3.0
    db_connect_timeout: int = 3
    # A pooled connection idle this long is checked before use (common.db).
    db_ping_after_idle_seconds: float = 1.0
    # Retry-After on a 503.
    retry_after_seconds: int = 5

    max_content_length: ClassVar[int] = 64 * 1024  # bodies over this are a 413

    @field_validator("database_url")
    @classmethod
    def _sqlite_by_default(cls, url: str) -> str:
        return url or default_database_url(cls.service_name)
