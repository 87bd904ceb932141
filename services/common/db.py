"""One engine and one sessionmaker per app; one session per request.

Views get the request's session from `get_session()`; it is closed when the
request ends. Transactions are explicit: a view commits what it writes.
A statement that is a whole transaction by itself (a page read, a
single-row insert) can instead go through `execute()`, which saves it two
round trips.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from flask import Flask, current_app, g
from sqlalchemy import BigInteger, DateTime, Integer, create_engine, event, text
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator

from .forking import in_forked_children
from .problems import Problem

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


def make_engine(config: dict, autocommit: bool = False) -> Engine:
    url: str = config["DATABASE_URL"]
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
        pool_size=config["DB_POOL_SIZE"],
        max_overflow=config["DB_POOL_SIZE"],
        pool_timeout=config["DB_POOL_TIMEOUT"],
        pool_recycle=1800,
        connect_args={"connect_timeout": config["DB_CONNECT_TIMEOUT"]},
        **options,
    )
    _ping_idle_connections(engine, after=config["DB_PING_AFTER_IDLE_SECONDS"])
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


def init_app(app: Flask) -> None:
    engine = make_engine(app.config)
    autocommit_engine = make_engine(app.config, autocommit=True)
    for each in (engine, autocommit_engine):
        # A worker forked from a master that used the engine must not share
        # the master's connections: drop them, without closing them under its feet.
        in_forked_children(each, lambda forked: forked.dispose(close=False))
    app.extensions["db_engine"] = engine
    app.extensions["db_autocommit_engine"] = autocommit_engine
    app.extensions["db_sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def get_engine() -> Engine:
    return current_app.extensions["db_engine"]


def get_session() -> Session:
    if "db_session" not in g:
        g.db_session = current_app.extensions["db_sessionmaker"]()
    return g.db_session


def request_session() -> Session | None:
    """The request's session if anything has used one yet, else None."""
    return g.get("db_session")


def execute(statement: Executable, params: dict | None = None) -> list[Row]:
    """Run one statement and return its rows.

    If the request's session has a transaction open (an Idempotency-Key's
    claim opens one), the statement joins it: a write commits with the rest,
    a read sees what the transaction wrote. Otherwise the statement is a
    transaction by itself and runs on a pooled connection in autocommit
    mode: one round trip, where psycopg2 would add a BEGIN before it and a
    COMMIT or ROLLBACK after it, and no session to set up and tear down
    (bench/README.md: what it bought). A write is committed, durably, before
    this returns; a read sees one snapshot, like any single statement."""
    session = request_session()
    if session is not None and session.in_transaction():
        return session.execute(statement, params).all()
    with current_app.extensions["db_autocommit_engine"].connect() as connection:
        return connection.execute(statement, params).all()


def write_one(statement: Executable, params: dict) -> Row:
    """Run one INSERT/UPDATE/DELETE … RETURNING (see `execute`) and return its one row."""
    (row,) = execute(statement, params)
    return row


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def get_or_404(model, ident: int, *, with_for_update: bool = False):
    """The row with primary key `ident`, or a 404 problem naming it."""
    row = get_session().get(model, ident, with_for_update=with_for_update)
    if row is None:
        raise Problem(404, f"{model.__name__} {ident} does not exist.")
    return row


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
