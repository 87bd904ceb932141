"""Request and response bodies: they validate requests and generate the
OpenAPI document, so the two cannot disagree."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, RootModel, StringConstraints

from common.db import MAX_ID
from common.pagination import PageQuery
from common.schemas import Id, RequestBody, ResponseBody, Timestamp, not_blank

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


class TweetList(RootModel[TweetPage | AuthoredTweetPage]):
    pass


class TweetsQuery(PageQuery):
    user_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only this user's tweets.")
    expand: Literal["author"] | None = Field(None, description="`author`: embed each tweet's author.")
