"""A service's database: its connection pools and its sessions (`Database`),
and the column types both services use.

Only a service's store (user_service/store.py, tweet_service/store.py) uses
a `Database`: the store begins and commits every transaction.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Integer, create_engine, event, text
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator

from .forking import in_forked_children
from .settings import ServiceSettings

# BIGINT ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

MAX_ID = 2**63 - 1


class UTCDateTime(TypeDecorator):
    """Timestamps stored and returned as aware UTC datetimes on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:  # SQLite keeps no zone
            value = value.replace(tzinfo=timezone.utc)
        return value


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Database:
    """The two pools of one service's database, and its sessions.

    - `session()`: an ORM session for a transaction of several statements;
      the caller (the store) commits it, and closing it rolls back whatever
      was not committed.
    - `execute()`: one statement that is a whole transaction by itself (a
      page read, a single-row insert), on a pool in autocommit mode: one
      round trip, where a transaction adds a BEGIN before it and a COMMIT
      after it. A write is durable when it returns; a read sees one snapshot.
    """

    def __init__(self, settings: ServiceSettings):
        self.engine = make_engine(settings)
        self.autocommit_engine = make_engine(settings, autocommit=True)
        for engine in (self.engine, self.autocommit_engine):
            # A worker forked from a master that used the engine must not share
            # the master's connections: drop them, without closing them under its feet.
            in_forked_children(engine, lambda forked: forked.dispose(close=False))
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self.sessions()

    def execute(self, statement: Executable, params: dict | None = None) -> list[Row]:
        with self.autocommit_engine.connect() as connection:
            return connection.execute(statement, params).all()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        self.autocommit_engine.dispose()


def make_engine(settings: ServiceSettings, autocommit: bool = False) -> Engine:
    url = settings.database_url
    # Set on the engine, autocommit is each connection's own mode from the
    # start; as a per-connection option it would be switched on and back
    # off around every use.
    options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15}, **options)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # WAL lets readers and the one writer work at once in `make dev`.
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA foreign_keys=ON")

        return engine
    engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        connect_args={"connect_timeout": settings.db_connect_timeout},
        **options,
    )
    _ping_idle_connections(engine, after=settings.db_ping_after_idle_seconds)
    return engine


def _ping_idle_connections(engine: Engine, after: float) -> None:
    """Check a pooled connection that sat idle for `after` seconds before
    handing it out, and replace it if the database dropped it (restart,
    failover, a proxy's idle timeout).

    pool_pre_ping would check every checkout: one more round trip per
    request (bench/README.md: what dropping it bought). A connection
    used a moment ago is almost surely alive, and if not, the error
    invalidates the whole pool and the request answers 503 like any
    database outage. The recipe is SQLAlchemy's "pessimistic disconnect
    handling" with a checkout event that raises DisconnectionError."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _note_idle_since(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < after:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and checks out another.
            raise DisconnectionError() from error
