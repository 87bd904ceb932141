"""Pooled PostgreSQL connections: one the database dropped while it sat idle
is replaced before a request gets it; a busy one is not pinged at all."""
from __future__ import annotations

import time

import pytest
from psycopg2.extensions import TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INTRANS
from sqlalchemy import event, text

from common.db import make_engine
from user_service.settings import UserSettings


@pytest.fixture
def engine(postgres_stack):
    engine = make_engine(UserSettings(database_url=postgres_stack.user_db_url,
                                      db_ping_after_idle_seconds=0.2))
    yield engine
    engine.dispose()


def _backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_connection_dropped_while_idle_is_replaced_before_use(engine, postgres_stack):
    dropped = _backend_pid(engine)
    with postgres_stack.user_db().connect() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped}).scalar_one()
    time.sleep(0.3)  # idle longer than DB_PING_AFTER_IDLE_SECONDS

    assert _backend_pid(engine) != dropped  # answered, on a new connection


def test_only_a_connection_that_sat_idle_is_pinged(engine):
    # The ping's SELECT leaves the connection inside a transaction: seen by a
    # checkout listener that runs after the pool's own.
    statuses = []
    event.listen(engine, "checkout", lambda dbapi_connection, *_: statuses.append(
        dbapi_connection.get_transaction_status()))
    _backend_pid(engine)  # a new connection: never idle
    for _ in range(5):
        _backend_pid(engine)
    time.sleep(0.3)
    _backend_pid(engine)

    idle, in_transaction = TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INTRANS
    assert statuses == [idle] * 6 + [in_transaction]
