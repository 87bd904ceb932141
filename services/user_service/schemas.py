"""Request and response bodies: they validate requests and generate the
OpenAPI document, so the two cannot disagree."""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, RootModel, StringConstraints, field_validator

from common.db import MAX_ID
from common.pagination import PageQuery
from common.schemas import (WHITESPACE, RequestBody, ResponseBody, Timestamp,
                            documented_as_id_list, trimmed_text)

Name = Annotated[str, StringConstraints(pattern=trimmed_text(50)),
                 AfterValidator(lambda name: name.strip(WHITESPACE))]
Handle = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,15}$")]

MAX_BATCH = 100


class UserCreate(RequestBody):
    name: Name = Field(description="1 to 50 characters after trimming.")
    handle: Handle | None = Field(None, description="Unique whatever the case.")


def _no_default(schema: dict) -> None:
    schema.pop("default", None)


class UserUpdate(RequestBody):
    # Typed `Name`, not `Name | None`: null is invalid, and the document says so.
    name: Name = Field(None, description="Omit it to keep the name.",
                       json_schema_extra=_no_default)
    handle: Handle | None = Field(None, description="null removes the handle.")


class UserOut(ResponseBody):
    id: int
    name: str
    handle: str | None
    created_at: Timestamp


class UserPage(BaseModel):
    data: list[UserOut]
    next_cursor: str | None


class UserBatch(BaseModel):
    data: list[UserOut] = Field(description="The users found, in the order asked.")
    missing: list[int] = Field(description="Ids asked for that do not exist.")


class UserList(RootModel[UserPage | UserBatch]):
    pass


class UsersQuery(PageQuery):
    ids: str | None = Field(
        None, pattern=r"^[0-9]+(,[0-9]+)*$", json_schema_extra=documented_as_id_list(MAX_BATCH),
        description=f"Comma-separated ids (at most {MAX_BATCH}): a batch lookup instead of a page.")

    @field_validator("ids")
    @classmethod
    def _ids_in_range(cls, value: str | None) -> str | None:
        if value is not None:
            ids = value.split(",")
            if len(ids) > MAX_BATCH:
                raise ValueError(f"at most {MAX_BATCH} ids")
            if not all(1 <= int(i) <= MAX_ID for i in ids):
                raise ValueError("ids must be between 1 and 2^63-1")
        return value

    @property
    def id_list(self) -> list[int]:
        return list(dict.fromkeys(int(i) for i in self.ids.split(","))) if self.ids else []
