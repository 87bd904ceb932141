"""Idempotency-Key for POST (draft-ietf-httpapi-idempotency-key-header).

A request with a key claims it by inserting the key's row in its own
transaction, before the view runs; the view's writes and the stored response
are committed with that row. So either the resource and its replayable
response both exist, or neither does: a retry after a crash never creates a
second row, and a worker that dies mid-request leaves nothing behind (the
database rolls its transaction back when the connection drops).

A duplicate that arrives while the first is in flight waits on the primary
key for at most IN_FLIGHT_WAIT: if the first commits by then, it gets the
replay; otherwise 409. (On SQLite, `make dev`, writers are serialised, so a
duplicate simply waits for the first and gets the replay.)
"""
from __future__ import annotations

import hashlib
import random
import re
from datetime import datetime, timedelta
from functools import wraps

import orjson
from flask import Response, make_response, request
from sqlalchemy import Integer, LargeBinary, String, Text, delete, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import UTCDateTime, get_session, request_session, utcnow
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
    location: Mapped[str | None] = mapped_column(Text)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)


def _fingerprint() -> str:
    """Same method, path and JSON body (whatever the key order) → same fingerprint."""
    raw = request.get_data()
    try:
        body = orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        body = raw
    return hashlib.sha256(b"%s %s\n%s" % (request.method.encode(), request.path.encode(), body)).hexdigest()


def _replay(row) -> Response:
    response = Response(row.body, status=row.status_code, mimetype="application/json")
    if row.location:
        response.headers["Location"] = row.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _in_flight() -> Problem:
    return Problem(409, f"A request with this {HEADER} is still being processed.",
                   type="urn:chirp:problem:idempotency-key-in-use")


def _set_lock_timeout(session: Session, value: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL lock_timeout = {value}"))


def _claim(session: Session, model, key: str, fingerprint: str) -> Response | None:
    """Insert the key's row in the request's transaction (None), or answer
    for the key: the stored response, 409 or 422."""
    now = utcnow()
    if random.random() < 0.01:  # forget expired keys now and then
        session.execute(delete(model).where(model.created_at < now - KEEP_FOR))
    try:
        _set_lock_timeout(session, f"'{IN_FLIGHT_WAIT}'")
        session.add(model(key=key, fingerprint=fingerprint, created_at=now))
        session.flush()
        _set_lock_timeout(session, "DEFAULT")
        return None
    except IntegrityError:
        session.rollback()
    except OperationalError as error:
        if getattr(error.orig, "pgcode", None) != _LOCK_NOT_AVAILABLE:
            raise
        session.rollback()
        raise _in_flight() from None
    row = session.get(model, key)
    if row is None or row.created_at < now - KEEP_FOR:
        # Expired (or just deleted): the key is free again.
        if row is not None:
            session.delete(row)
            session.commit()
        return _claim(session, model, key, fingerprint)
    if row.fingerprint != fingerprint:
        raise Problem(422, f"{HEADER} was already used with a different request.",
                      type="urn:chirp:problem:idempotency-key-reused")
    return _replay(row)


def idempotent_post(model):
    """Decorate a POST view that adds rows to the request's session (or
    stores one with `write_one`) without committing: this commits them,
    together with the stored response when the request carries an
    Idempotency-Key."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            key = request.headers.get(HEADER)
            if key is not None:
                if not _VALID_KEY.fullmatch(key):
                    raise Problem(400, f"{HEADER} must be 1 to 255 printable characters.")
                replay = _claim(get_session(), model, key, _fingerprint())
                if replay is not None:
                    return replay
            try:
                response = make_response(view(*args, **kwargs))
                if key is not None:
                    get_session().execute(update(model).where(model.key == key).values(
                        status_code=response.status_code,
                        location=response.headers.get("Location"),
                        body=response.get_data(),
                    ))
                # A view that wrote with write_one alone has no session to commit.
                if (session := request_session()) is not None:
                    session.commit()
            except BaseException:
                if (session := request_session()) is not None:
                    session.rollback()  # the claim goes with it: the key is free again
                raise
            return response

        return wrapper

    return decorator
