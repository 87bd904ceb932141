"""Idempotency-Key for POST (draft-ietf-httpapi-idempotency-key-header).

The first request with a key claims it by inserting a row, committed at once
so that a concurrent duplicate hits the primary key and gets 409 instead of
racing. The view's writes and the stored response are then committed in one
transaction: either the resource and its replayable response both exist, or
neither does, so a retry after a crash can never create a second row.
"""
from __future__ import annotations

import hashlib
import logging
import random
import re
from datetime import datetime, timedelta
from functools import wraps

import orjson
from flask import Response, current_app, make_response, request
from sqlalchemy import Integer, LargeBinary, String, Text, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from .db import UTCDateTime, get_session, utcnow
from .problems import Problem

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=24)
# A claim this old whose request never finished belonged to a worker that
# died; longer than any request may run (gunicorn's timeout).
ABANDONED_AFTER = timedelta(seconds=60)
log = logging.getLogger(__name__)
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class IdempotencyKeyMixin:
    """Columns of the `idempotency_keys` table each service keeps in its own database."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
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


def _conflict(detail: str) -> Problem:
    return Problem(409, detail, type="urn:chirp:problem:idempotency-key-in-use")


def _claim(model, key: str, fingerprint: str) -> Response | None:
    """Claim `key` for this request, or answer for it: a replay, 409 or 422."""
    sessionmaker = current_app.extensions["db_sessionmaker"]
    now = utcnow()
    with sessionmaker() as session:
        if random.random() < 0.01:  # forget expired keys now and then
            with session.begin():
                session.execute(delete(model).where(model.created_at < now - KEEP_FOR))
        try:
            with session.begin():
                session.add(model(key=key, fingerprint=fingerprint, claimed_at=now, created_at=now))
            return None
        except IntegrityError:
            pass
        with session.begin():
            row = session.scalars(select(model).where(model.key == key).with_for_update()).first()
            if row is None or row.created_at < now - KEEP_FOR:
                # Gone or expired in the meantime: take it over as new.
                session.merge(model(key=key, fingerprint=fingerprint, claimed_at=now, created_at=now,
                                    status_code=None, location=None, body=None))
                return None
            if row.fingerprint != fingerprint:
                raise Problem(422, f"{HEADER} was already used with a different request.",
                              type="urn:chirp:problem:idempotency-key-reused")
            if row.status_code is not None:
                return _replay(row)
            if row.claimed_at >= now - ABANDONED_AFTER:
                raise _conflict(f"A request with this {HEADER} is still being processed.")
            row.claimed_at = now  # the first attempt died mid-way: retry it
            return None


def _release(model, key: str) -> None:
    """Free the claim of a request that failed, so that it can be retried.
    If even that fails (database down), the claim expires by itself."""
    try:
        with current_app.extensions["db_sessionmaker"].begin() as session:
            session.execute(delete(model).where(model.key == key, model.status_code.is_(None)))
    except Exception:
        log.warning("could not release %s; it expires after %s", HEADER, ABANDONED_AFTER)


def idempotent_post(model):
    """Decorate a POST view that adds rows to the request's session without
    committing: this commits them, together with the stored response when
    the request carries an Idempotency-Key."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            session = get_session()
            key = request.headers.get(HEADER)
            if key is None:
                response = make_response(view(*args, **kwargs))
                session.commit()
                return response
            if not _VALID_KEY.fullmatch(key):
                raise Problem(400, f"{HEADER} must be 1 to 255 printable characters.")
            replay = _claim(model, key, _fingerprint())
            if replay is not None:
                return replay
            try:
                response = make_response(view(*args, **kwargs))
                session.execute(update(model).where(model.key == key).values(
                    status_code=response.status_code,
                    location=response.headers.get("Location"),
                    body=response.get_data(),
                ))
                session.commit()
            except BaseException:
                session.rollback()
                _release(model, key)
                raise
            return response

        return wrapper

    return decorator
