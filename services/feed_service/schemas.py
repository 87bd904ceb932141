"""Request and response bodies: they validate requests and generate the
OpenAPI document, so the two cannot disagree."""
from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from common.db import MAX_ID
from common.pagination import PageQuery
from common.inbox import TweetCreated, TweetDeleted, UserDeleted, UserUpdated, event_batch
from common.schemas import ResponseBody, Timestamp

# -- follows


class FollowOut(ResponseBody):
    follower_id: int
    followee_id: int
    created_at: Timestamp


class FollowPage(BaseModel):
    data: list[FollowOut]
    next_cursor: str | None


class FollowsQuery(PageQuery):
    follower_id: int | None = Field(None, ge=1, le=MAX_ID, description="Whom this user follows.")
    followee_id: int | None = Field(None, ge=1, le=MAX_ID, description="Who follows this user.")

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.follower_id is None) == (self.followee_id is None):
            raise ValueError("give exactly one of follower_id and followee_id")
        return self


# -- timelines


class Author(BaseModel):
    id: int
    name: str
    handle: str | None


class TimelineTweet(BaseModel):
    id: int
    user_id: int
    content: str
    created_at: str = Field(description="RFC 3339 UTC, as the tweet service gives it.")
    author: Author


class TimelinePage(BaseModel):
    data: list[TimelineTweet]
    next_cursor: str | None


# -- events (internal: from the other services' outboxes)

EventBatch = event_batch("FeedEvents", TweetCreated, TweetDeleted, UserDeleted, UserUpdated)
