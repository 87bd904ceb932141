"""Pydantic building blocks both services' schemas use."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from .db import MAX_ID

# PostgreSQL text cannot hold NUL; refuse it at the door rather than fail later.
NO_NUL = r"^[^\x00]*$"

# Unicode White_Space, spelled out: `\s` differs between pydantic's Rust regex
# engine and the Python or JavaScript ones clients validate the document with.
WHITESPACE_CLASS = r"\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"


def trimmed_text(max_length: int) -> str:
    """A pattern for text of 1..max_length characters once white space is
    trimmed from both ends, and no NUL: the length applies after trimming,
    which minLength/maxLength could not say."""
    ws, core = WHITESPACE_CLASS, rf"[^{WHITESPACE_CLASS}\x00]"
    return rf"^[{ws}]*{core}(?:[^\x00]{{0,{max_length - 2}}}{core})?[{ws}]*$"


def not_blank() -> str:
    """A pattern for text with at least one character that is not white space, and no NUL."""
    return rf"^[^\x00]*[^{WHITESPACE_CLASS}\x00][^\x00]*$"


def _integral_number(value):
    # JSON Schema counts 1.0 as an integer, so it is one here too; strings
    # and booleans stay invalid (strict=True).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID, strict=True), BeforeValidator(_integral_number)]


def documented_as_id_list(max_items: int):
    """`json_schema_extra` for a query parameter of comma-separated ids that
    is parsed as text: documents it as what it holds (an array of ids, which
    common/openapi.py marks comma-separated), so every rule is in the document."""

    def replace(schema: dict) -> None:
        schema.clear()
        schema.update(type="array", minItems=1, maxItems=max_items,
                      items={"type": "integer", "minimum": 1, "maximum": MAX_ID})

    return replace


def rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Timestamp = Annotated[datetime, PlainSerializer(rfc3339, return_type=str)]


class RequestBody(BaseModel):
    """A JSON request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ResponseBody(BaseModel):
    model_config = ConfigDict(from_attributes=True)
