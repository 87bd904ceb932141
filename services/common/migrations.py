"""Alembic, driven from code: each service keeps its own migration history
in `<service>/migrations` and its own `alembic_version` in its own database.

Safe in any start order and at any scale: `upgrade` waits for the database,
then migrates inside one transaction holding a PostgreSQL advisory lock, so
of N processes started at once (one per pod) one migrates and the others
find the schema current; a service whose schema is not there yet answers 503
and stays unready until it arrives (`wait_for_schema`), instead of exiting.
"""
from __future__ import annotations

import logging
import threading
import time
import zlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, request
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from .problems import DependencyUnavailable

log = logging.getLogger(__name__)


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    # '%' would be read as interpolation by configparser.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def lock_key(service: str) -> int:
    """The advisory lock every migrator of this service's database queues on."""
    return zlib.crc32(f"chirp-migrations:{service}".encode())


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head", *,
            service: str = "chirp", wait_seconds: float = 0.0) -> tuple[str | None, str | None]:
    """Migrate to `revision`; returns the (before, after) revisions.

    Waits up to `wait_seconds` for the database to accept connections (a pod
    may start before its database). On PostgreSQL the check and the migration
    run in one transaction under `pg_advisory_xact_lock`: concurrent callers
    queue, and each later one sees the schema already at `revision`."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        _wait_for_database(engine, wait_seconds, service)
        config = alembic_config(migrations_dir, database_url)
        if engine.dialect.name != "postgresql":  # SQLite (`make dev`): one process
            with engine.connect() as connection:
                before = _revision(connection)
            command.upgrade(config, revision)
            with engine.connect() as connection:
                return before, _revision(connection)
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(service)})
            before = _revision(connection)
            config.attributes["connection"] = connection  # run_env migrates on it
            command.upgrade(config, revision)
            return before, _revision(connection)
    finally:
        engine.dispose()


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _wait_for_database(engine: Engine, wait_seconds: float, service: str) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with engine.connect():
                return
        except OperationalError as error:
            if time.monotonic() >= deadline:
                raise
            log.warning("%s: database not reachable yet, retrying: %s", service,
                        str(error.orig or error).strip().split("\n")[0])
            time.sleep(1.0)


def head_revision(migrations_dir: Path) -> str | None:
    return ScriptDirectory(str(migrations_dir)).get_current_head()


class SchemaGate:
    """Open once the database schema is at the code's head revision; then it
    stays open (a later, newer schema is the next release's, mid-rollout).
    While closed, looks again at most every `recheck_seconds`."""

    def __init__(self, engine: Engine, migrations_dir: Path, service: str,
                 recheck_seconds: float = 1.0):
        self.engine, self.service, self.recheck_seconds = engine, service, recheck_seconds
        self.head = head_revision(migrations_dir)
        self.is_open = False
        self._next_check = 0.0
        self._lock = threading.Lock()

    def check(self) -> bool:
        if self.is_open:
            return True
        with self._lock:
            now = time.monotonic()
            if self.is_open or now < self._next_check:
                return self.is_open
            self._next_check = now + self.recheck_seconds
            try:
                with self.engine.connect() as connection:
                    current = _revision(connection)
            except OperationalError:
                return False  # database down: /readyz says so
            if current == self.head:
                self.is_open = True
                log.info("%s: database schema at %s, serving", self.service, current)
            return self.is_open


# Answer even while the schema is missing: liveness must not depend on the
# database, and metrics show what the pod is doing.
_UNGATED_PATHS = frozenset({"/healthz", "/metrics"})


def wait_for_schema(app: Flask, migrations_dir: Path, service: str) -> SchemaGate:
    """Serve 503 (and report not ready) until the schema is migrated, instead
    of refusing to start: in a cluster the service may start before its
    migration has run, and a crash-looping pod would only delay it."""
    gate = SchemaGate(app.extensions["db_engine"], migrations_dir, service)
    if not gate.check():
        log.warning("%s: database schema not at %s (or database unreachable); answering 503 "
                    "until `python -m %s upgrade` has run", service, gate.head, service)

    @app.before_request
    def _schema_ready():
        if not gate.is_open and request.path not in _UNGATED_PATHS and not gate.check():
            raise DependencyUnavailable("The database schema is not migrated yet.")

    app.extensions["schema_gate"] = gate
    return gate


def run_env(target_metadata) -> None:
    """The body of a service's migrations/env.py."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is not None:  # upgrade(): already in its locked transaction
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
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
