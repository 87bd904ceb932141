"""Request and response bodies: they validate requests and generate the
OpenAPI document, so the two cannot disagree."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, RootModel, StringConstraints

from common.db import MAX_ID
from common.pagination import PageQuery
from common.schemas import Id, RequestBody, ResponseBody, Timestamp, not_blank

MAX_BATCH = 100  # ids per list, as in the user service

# 1 to 100 comma-separated ids, each 1 to 10^18-1: all of it in the pattern,
# so the OpenAPI document says exactly what is accepted.
IdList = Annotated[str, StringConstraints(
    pattern=rf"^[1-9][0-9]{{0,17}}(,[1-9][0-9]{{0,17}}){{0,{MAX_BATCH - 1}}}$")]

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


class AuthoredTweet(TweetOut):
    author: Author | None = Field(description="null if the user no longer exists.")


class TweetPage(BaseModel):
    data: list[TweetOut]
    next_cursor: str | None


class AuthoredTweetPage(BaseModel):
    """A page asked for with `?expand=author`."""

    data: list[AuthoredTweet]
    next_cursor: str | None


class TweetBatch(BaseModel):
    """The answer to `?ids=`."""

    data: list[TweetOut] = Field(description="The tweets found, in the order asked.")
    missing: list[int] = Field(description="Ids asked for that do not exist.")


class AuthoredTweetBatch(BaseModel):
    """The answer to `?ids=` with `expand=author`."""

    data: list[AuthoredTweet] = Field(description="The tweets found, in the order asked.")
    missing: list[int] = Field(description="Ids asked for that do not exist.")


class TweetList(RootModel[TweetPage | AuthoredTweetPage | TweetBatch | AuthoredTweetBatch]):
    pass


class TweetsQuery(PageQuery):
    user_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only this user's tweets.")
    user_ids: IdList | None = Field(
        None, description=f"Comma-separated user ids (at most {MAX_BATCH}): only their tweets "
                          "(and only `user_id`'s, if it is given too).")
    ids: IdList | None = Field(
        None, description=f"Comma-separated tweet ids (at most {MAX_BATCH}): a batch lookup "
                          "instead of a page; the other parameters but `expand` are ignored.")
    expand: Literal["author"] | None = Field(None, description="`author`: embed each tweet's author.")

    @staticmethod
    def split(ids: str) -> list[int]:
        """The distinct ids of a list, in order."""
        return list(dict.fromkeys(int(i) for i in ids.split(",")))
