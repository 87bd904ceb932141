"""Alembic, driven from code: each service keeps its own migration history
in `<service>/migrations` and its own `alembic_version` in its own database."""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)


class SchemaNotMigrated(RuntimeError):
    pass


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    # '%' would be read as interpolation by configparser.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations_dir, database_url), revision)


def check_current(engine: Engine, migrations_dir: Path, service: str) -> None:
    """Refuse to serve a database whose schema is behind the code."""
    head = ScriptDirectory(str(migrations_dir)).get_current_head()
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except OperationalError:
        # Database down: start anyway and report not-ready (/readyz) until it
        # is back, rather than crash-loop. The check runs again at next start.
        log.warning("%s: database unreachable, schema version not checked", service)
        return
    if current != head:
        raise SchemaNotMigrated(
            f"{service}: database schema is at revision {current or 'none'}, the code needs "
            f"{head}. Run `python -m {service} upgrade` (or `make migrate`) first."
        )


def run_env(target_metadata) -> None:
    """The body of a service's migrations/env.py."""
    from alembic import context
    from sqlalchemy import create_engine

    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    with create_engine(url).connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


def create_idempotency_keys_table() -> None:
    """Revision 0001 of each service creates its `idempotency_keys` with this.
    Frozen like any migration: a later change gets a new function."""
    import sqlalchemy as sa
    from alembic import op

    from .db import UTCDateTime

    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
