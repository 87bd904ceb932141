"""The transactional outbox: events committed with the change that caused them.

A store records an event with `emit(session, destination, topic, payload)`
inside the transaction that makes the change, so both commit or neither does.
The `outbox` table in the service's own database is the queue; a `Relay`
hands its rows to the destination's sink and deletes them once the sink
succeeded. Nothing else to deploy, and nothing is lost while a destination
is down: the rows wait, and the relay retries with backoff.

Delivery is at least once, in id order per destination. A consumer makes
replays harmless by remembering event ids ("<source>:<outbox id>").

Two ways a row leaves:

- **inline** destinations (the user service's cache): right after the
  commit, in the committing thread, so the request answers only once its
  events are applied. A failure leaves the rows to the relay thread.
- the others (HTTP consumers): the relay thread, woken by the commit.

The relay thread also polls every `poll_every` seconds, which delivers the
rows of a process that died between its commit and their delivery. On
PostgreSQL concurrent relays claim disjoint batches (FOR UPDATE SKIP LOCKED);
on SQLite (`make dev`) a claim takes the database's write lock
(BEGIN IMMEDIATE).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests
from prometheus_client import Counter
from sqlalchemy import JSON, Index, String, Table, delete, event, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column, sessionmaker

from .db import BigId, UTCDateTime, utcnow
from .forking import in_forked_children
from .request_id import HEADER as REQUEST_ID_HEADER, current_request_id

log = logging.getLogger(__name__)

DELIVERIES = Counter("outbox_events_total", "Outbox events by destination and result: "
                     "delivered, or failed (kept for a retry).", ["destination", "result"])

Event = dict[str, Any]  # the wire format: id, type, request_id, occurred_at, data
Sink = Callable[[list[Event]], None]  # delivers a batch or raises


class OutboxMixin:
    """Columns of the `outbox` table each producing service keeps in its own database."""

    __tablename__ = "outbox"

    @declared_attr.directive
    def __table_args__(cls):
        # Never reuse an id (SQLite would, after a delete): it names the event.
        return (Index("ix_outbox_destination_id", "destination", "id"),
                {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    destination: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


def create_outbox_table() -> None:
    """The migration that adds a service's `outbox`. Frozen like any
    migration: a later change gets a new function."""
    import sqlalchemy as sa
    from alembic import op

    op.create_table(
        "outbox",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("destination", sa.String(32), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_destination_id", "outbox", ["destination", "id"])


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def emit(session: Session, destination: str, topic: str, payload: dict) -> None:
    """Record an event in the session's transaction; it is delivered once
    that transaction commits, and never if it rolls back."""
    relay: Relay = session.info["outbox"]
    relay.record(session, destination, topic, payload)


class Relay:
    """Delivers one database's outbox to its destinations' sinks."""

    def __init__(self, engine: Engine, table: Table, source: str, *, poll_every: float = 0.5,
                 batch_size: int = 100, min_backoff: float = 0.1, max_backoff: float = 10.0):
        self.engine = engine
        self.table = table
        self.source = source  # event ids are "<source>:<outbox id>"
        self.poll_every = poll_every
        self.batch_size = batch_size
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.sinks: dict[str, Sink] = {}
        self.max_backoffs: dict[str, float] = {}
        self.inline: set[str] = set()
        self._claim_sql = "BEGIN IMMEDIATE" if engine.dialect.name == "sqlite" else None
        self._reset()
        in_forked_children(self, Relay._reset)  # a forked process starts its own thread

    def _reset(self) -> None:
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopped = threading.Event()
        self._retry_at: dict[str, float] = {}
        self._backoff: dict[str, float] = {}

    # -- set-up

    def add_destination(self, name: str, sink: Sink, *, inline: bool = False,
                        max_backoff: float | None = None) -> None:
        self.sinks[name] = sink
        if inline:
            self.inline.add(name)
        if max_backoff is not None:
            self.max_backoffs[name] = max_backoff

    def install(self, maker: sessionmaker) -> None:
        """Make `emit` work on the sessions `maker` creates."""
        maker.configure(info={"outbox": self})
        event.listen(maker, "after_begin", _forget_pending)
        event.listen(maker, "after_rollback", _forget_pending)
        event.listen(maker, "after_commit", self._after_commit)

    # -- recording, in the producer's transaction

    def record(self, session: Session, destination: str, topic: str, payload: dict) -> None:
        if destination not in self.sinks:
            raise ValueError(f"outbox: no sink for destination {destination!r}")
        created_at, request_id = utcnow(), current_request_id()
        row_id = session.execute(insert(self.table).returning(self.table.c.id), {
            "destination": destination, "topic": topic, "payload": payload,
            "request_id": request_id, "created_at": created_at}).scalar_one()
        session.info.setdefault("outbox_pending", []).append(
            (row_id, destination, self._event(row_id, topic, request_id, created_at, payload)))

    def _event(self, row_id: int, topic: str, request_id: str | None, created_at: datetime,
               payload: dict) -> Event:
        return {"id": f"{self.source}:{row_id}", "type": topic, "request_id": request_id,
                "occurred_at": rfc3339(created_at), "data": payload}

    def _after_commit(self, session: Session) -> None:
        pending = session.info.pop("outbox_pending", None)
        if not pending:
            return
        later = False
        for destination in dict.fromkeys(d for _, d, _ in pending):
            rows = [(row_id, e) for row_id, d, e in pending if d == destination]
            if destination in self.inline and self._deliver_inline(destination, rows):
                continue
            later = True
        if later:
            self.wake()

    def _deliver_inline(self, destination: str, rows: list[tuple[int, Event]]) -> bool:
        try:
            self.sinks[destination]([e for _, e in rows])
            DELIVERIES.labels(destination, "delivered").inc(len(rows))
            with self.engine.begin() as connection:
                connection.execute(delete(self.table).where(self.table.c.id.in_([i for i, _ in rows])))
            return True
        except Exception as error:  # the relay thread retries them
            DELIVERIES.labels(destination, "failed").inc(len(rows))
            log.warning("outbox: %s delivery failed, left to the relay: %s", destination,
                        error.__class__.__name__)
            return False

    # -- the relay thread

    def wake(self) -> None:
        """Deliver what is pending now (starting this process's thread if needed)."""
        self.ensure_running()
        self._wakeup.set()

    def ensure_running(self) -> None:
        """Start this process's relay thread unless it runs (it is reset in a forked child)."""
        if self._thread is not None or not self.sinks:
            return
        with self._start_lock:
            if self._thread is None:
                self._stopped.clear()
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"outbox-relay-{self.source}")
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stopped.is_set():
            for destination in self.sinks:
                if time.monotonic() >= self._retry_at.get(destination, 0.0):
                    self._drain(destination)
            self._wakeup.wait(self._until_next())
            self._wakeup.clear()

    def _until_next(self) -> float:
        now = time.monotonic()
        retries = [at - now for at in self._retry_at.values()]
        return max(0.0, min([self.poll_every, *retries]))

    def _drain(self, destination: str) -> None:
        try:
            while self.deliver(destination) == self.batch_size:
                pass
        except Exception as error:
            delay = min(self.max_backoffs.get(destination, self.max_backoff),
                        self._backoff.get(destination, self.min_backoff / 2) * 2)
            if destination not in self._backoff:  # once per outage, not once per retry
                log.warning("outbox: %s delivery failing, retrying every %.1f s at most: %s",
                            destination, self.max_backoffs.get(destination, self.max_backoff),
                            error.__class__.__name__)
            self._backoff[destination] = delay
            self._retry_at[destination] = time.monotonic() + delay
            return
        if self._backoff.pop(destination, None) is not None:
            log.info("outbox: %s delivery works again", destination)
        self._retry_at.pop(destination, None)

    def deliver(self, destination: str) -> int:
        """Claim one batch of `destination`'s rows, hand it to the sink and
        delete it, in one transaction; the number of events delivered."""
        t = self.table
        claim = (select(t.c.id, t.c.topic, t.c.request_id, t.c.created_at, t.c.payload)
                 .where(t.c.destination == destination).order_by(t.c.id).limit(self.batch_size)
                 .with_for_update(skip_locked=True))
        with self.engine.connect() as connection:
            if self._claim_sql:
                connection.exec_driver_sql(self._claim_sql)
            rows = connection.execute(claim).all()
            if rows:
                try:
                    self.sinks[destination]([self._event(*row) for row in rows])
                except Exception:
                    DELIVERIES.labels(destination, "failed").inc(len(rows))
                    raise
                connection.execute(delete(t).where(t.c.id.in_([row.id for row in rows])))
            connection.commit()
        if rows:
            DELIVERIES.labels(destination, "delivered").inc(len(rows))
        return len(rows)


def _forget_pending(session: Session, *_args) -> None:
    session.info.pop("outbox_pending", None)


class HttpSink:
    """POSTs a batch as `{"events": [...]}` to `<base_url>/internal/events`;
    anything but a 2xx answer is a failure (the batch is retried)."""

    def __init__(self, base_url: str, timeout: tuple[float, float] = (1.0, 5.0)):
        self.url = base_url.rstrip("/") + "/internal/events"
        self.timeout = timeout
        self._http = requests.Session()

    def __call__(self, events: list[Event]) -> None:
        headers = {}
        if events[0].get("request_id"):
            headers[REQUEST_ID_HEADER] = events[0]["request_id"]
        response = self._http.post(self.url, json={"events": events}, headers=headers,
                                   timeout=self.timeout)
        response.raise_for_status()
