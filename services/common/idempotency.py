"""Idempotency-Key for POST (draft-ietf-httpapi-idempotency-key-header).

A store claims the request's key by inserting the key's row in the same
transaction that creates the resource, and records the response there too.
So either the resource and its replayable response both exist, or neither
does: a retry after a crash never creates a second row, and a worker that
dies mid-request leaves nothing behind (the database rolls its transaction
back when the connection drops).

A duplicate that arrives while the first is in flight waits on the key's row
for at most IN_FLIGHT_WAIT: if the first commits by then, it gets the
replay; otherwise 409. (On SQLite, `make dev`, writers are serialised, so a
duplicate simply waits for the first and gets the replay.)

In a view: `store.create(body, idempotency.requested())`, then
`return idempotency.created(result, location)`.
"""
from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from flask import request
from pydantic import BaseModel
from sqlalchemy import Integer, LargeBinary, String, delete, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import UTCDateTime, utcnow
from .problems import Problem

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=24)
IN_FLIGHT_WAIT = "200ms"
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class IdempotencyKeyMixin:
    """Columns of the `idempotency_keys` table each service keeps in its own database."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status_code: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)


@dataclass(frozen=True)
class Requested:
    """The request's key, and what makes a repeat the same request."""

    key: str
    fingerprint: str


@dataclass(frozen=True)
class Replay:
    """The stored response of the request that first used the key."""

    status: int
    body: bytes


def requested() -> Requested | None:
    """The request's Idempotency-Key (400 if malformed), or None."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _VALID_KEY.fullmatch(key):
        raise Problem(400, f"{HEADER} must be 1 to 255 printable characters.")
    return Requested(key, _fingerprint())


def _fingerprint() -> str:
    """Same method, path and JSON body (whatever the key order) → same fingerprint."""
    raw = request.get_data()
    try:
        body = orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        body = raw
    return hashlib.sha256(b"%s %s\n%s" % (request.method.encode(), request.path.encode(), body)).hexdigest()


def created(result: BaseModel | Replay, location: Callable[[int], str]):
    """A view's answer to a POST that created `result` (or replays it): the
    body through the view's output schema, 201 and Location."""
    if isinstance(result, Replay):
        body = orjson.loads(result.body)
        return body, result.status, {"Location": location(body["id"]), "Idempotent-Replayed": "true"}
    return result, 201, {"Location": location(result.id)}


def _in_flight() -> Problem:
    return Problem(409, f"A request with this {HEADER} is still being processed.",
                   type="urn:chirp:problem:idempotency-key-in-use")


def _set_lock_timeout(session: Session, value: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL lock_timeout = {value}"))


def claim(session: Session, model, requested: Requested) -> Replay | None:
    """Claim the key in the session's transaction (None), or answer for it:
    the stored response, 409 (in flight) or 422 (another request's key)."""
    now = utcnow()
    if random.random() < 0.01:  # forget expired keys now and then
        session.execute(delete(model).where(model.created_at < now - KEEP_FOR))
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    try:
        _set_lock_timeout(session, f"'{IN_FLIGHT_WAIT}'")
        # Waits for a transaction holding the same key to end, then inserts
        # or finds the row it committed.
        inserted = session.execute(
            dialect.insert(model).values(key=requested.key, fingerprint=requested.fingerprint,
                                         created_at=now)
            .on_conflict_do_nothing().returning(model.key)).first()
        _set_lock_timeout(session, "DEFAULT")
    except OperationalError as error:
        if getattr(error.orig, "pgcode", None) == _LOCK_NOT_AVAILABLE:
            raise _in_flight() from None
        raise
    if inserted:
        return None
    row = session.get(model, requested.key)
    if row is None:  # deleted as expired meanwhile
        return claim(session, model, requested)
    if row.created_at < now - KEEP_FOR:  # expired: the key is free again
        row.fingerprint, row.created_at, row.status_code, row.body = requested.fingerprint, now, None, None
        return None
    if row.fingerprint != requested.fingerprint:
        raise Problem(422, f"{HEADER} was already used with a different request.",
                      type="urn:chirp:problem:idempotency-key-reused")
    return Replay(row.status_code, row.body)


def record(session: Session, model, requested: Requested, status: int, body: BaseModel) -> None:
    """Store the response a claimed key replays, in the claim's transaction."""
    session.execute(update(model).where(model.key == requested.key).values(
        status_code=status, body=orjson.dumps(body.model_dump(mode="json"))))
