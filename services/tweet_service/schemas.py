"""Request and response bodies: they validate requests and generate the
OpenAPI document, so the two cannot disagree."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, RootModel, StringConstraints, model_validator

from common.db import MAX_ID
from common.pagination import PageQuery
from common.schemas import Id, RequestBody, ResponseBody, Timestamp, not_blank

MAX_BATCH = 100  # ids per list, as in the user service


def _id_list(value: str) -> str:
    ids = value.split(",")
    if len(ids) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} ids")
    if not all(1 <= int(i) <= MAX_ID for i in ids):
        raise ValueError("ids must be between 1 and 2^63-1")
    return value


# 1 to 280 code points, at least one of them not white space, no NUL.
Content = Annotated[str, StringConstraints(min_length=1, max_length=280, pattern=not_blank())]


class TweetCreate(RequestBody):
    user_id: Id = Field(description="An existing user (checked with the user service).")
    content: Content


class Author(BaseModel):
    id: int
    name: str
    handle: str | None


class TweetOut(ResponseBody):
    id: int
    user_id: int
    content: str
    created_at: Timestamp
    author: Author | None = Field(
        None, description="Only with `?expand=author`; null if the user no longer exists.")


class TweetPage(BaseModel):
    data: list[TweetOut]
    next_cursor: str | None


class TweetBatch(BaseModel):
    data: list[TweetOut] = Field(description="The tweets found, in the order asked.")
    missing: list[int] = Field(description="Ids asked for that do not exist.")


class TweetList(RootModel[TweetPage | TweetBatch]):
    pass


IdList = Annotated[str, StringConstraints(pattern=r"^[0-9]+(,[0-9]+)*$"),
                   AfterValidator(_id_list)]


class TweetsQuery(PageQuery):
    user_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only this user's tweets.")
    user_ids: IdList | None = Field(
        None, description=f"Comma-separated user ids (at most {MAX_BATCH}): only their tweets.")
    ids: IdList | None = Field(
        None, description=f"Comma-separated tweet ids (at most {MAX_BATCH}): a batch lookup "
                          "instead of a page.")
    expand: Literal["author"] | None = Field(None, description="`author`: embed each tweet's author.")

    @model_validator(mode="after")
    def _one_selection(self):
        if self.user_id is not None and self.user_ids is not None:
            raise ValueError("give user_id or user_ids, not both")
        if self.ids is not None and (self.user_id or self.user_ids or self.cursor):
            raise ValueError("ids is a batch lookup: it takes no user_id, user_ids or cursor")
        return self

    @staticmethod
    def split(ids: str) -> list[int]:
        """The distinct ids of a list, in order."""
        return list(dict.fromkeys(int(i) for i in ids.split(",")))
