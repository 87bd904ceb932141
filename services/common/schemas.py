"""Pydantic building blocks both services' schemas use."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from .db import MAX_ID

# PostgreSQL text cannot hold NUL; refuse it at the door rather than fail later.
NO_NUL = r"^[^\x00]*$"


def _integral_number(value):
    # JSON Schema counts 1.0 as an integer, so it is one here too; strings
    # and booleans stay invalid (strict=True).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID, strict=True), BeforeValidator(_integral_number)]


def rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Timestamp = Annotated[datetime, PlainSerializer(rfc3339, return_type=str)]


class RequestBody(BaseModel):
    """A JSON request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ResponseBody(BaseModel):
    model_config = ConfigDict(from_attributes=True)
