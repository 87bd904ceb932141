"""Keyset pagination with opaque cursors.

A cursor wraps the id of the last item on a page; the next page continues
strictly after it, so rows inserted meanwhile never shift a page the way
OFFSET would (no item is skipped or repeated).
"""
from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, Field, field_validator

from .db import MAX_ID

_PREFIX = "v1:"


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id inside a cursor; ValueError for anything this service did not mint."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("cursor is not valid") from None
    digits = raw.removeprefix(_PREFIX)
    if raw == digits or not digits.isdigit() or not 0 < int(digits) <= MAX_ID:
        raise ValueError("cursor is not valid")
    return int(digits)


class PageQuery(BaseModel):
    limit: int = Field(20, ge=1, le=100, description="Page size.")
    cursor: str | None = Field(None, max_length=64, description="`next_cursor` of the previous page.")

    @field_validator("cursor")
    @classmethod
    def _cursor_is_ours(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(value)
        return value

    @property
    def after_id(self) -> int | None:
        return decode_cursor(self.cursor) if self.cursor else None


def page(items: list, limit: int, key=lambda item: item.id) -> tuple[list, str | None]:
    """Split a query result fetched with `limit + 1` rows into a page and the
    cursor of the next one (None on the last page)."""
    if len(items) > limit:
        items = items[:limit]
        return items, encode_cursor(key(items[-1]))
    return items, None
