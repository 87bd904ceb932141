"""Settings every service reads from its environment, typed, in one object.

Each service subclasses `ServiceSettings` (user_service/settings.py,
tweet_service/settings.py) and reads it once, at start-up (`get_settings`);
tests build their own: `create_app(UserSettings(database_url=...))`.
An environment variable is the field's name in capitals; an empty one counts
as unset.
"""
from __future__ import annotations

import os
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


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, env_ignore_empty=True, extra="ignore")

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
    log_level: str = "INFO"

    max_content_length: ClassVar[int] = 64 * 1024  # bodies over this are a 413

    @field_validator("database_url")
    @classmethod
    def _sqlite_by_default(cls, url: str) -> str:
        return url or default_database_url(cls.service_name)
