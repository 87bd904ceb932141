"""Request and response bodies: they validate requests and generate the
OpenAPI document, so the two cannot disagree."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, model_validator

from common.db import MAX_ID
from common.pagination import PageQuery
from common.schemas import Id, RequestBody, ResponseBody, Timestamp

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

EventId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class EventBase(RequestBody):
    model_config = ConfigDict(extra="ignore")  # producers may add fields before we read them

    id: EventId = Field(description="`<source>:<outbox id>`: unique per event, kept to drop replays.")
    request_id: str | None = Field(None, max_length=128)
    occurred_at: datetime


class TweetRef(BaseModel):
    tweet_id: Id
    user_id: Id


class UserRef(BaseModel):
    user_id: Id


class TweetCreated(EventBase):
    type: Literal["tweet.created"]
    data: TweetRef


class TweetDeleted(EventBase):
    type: Literal["tweet.deleted"]
    data: TweetRef


class UserDeleted(EventBase):
    type: Literal["user.deleted"]
    data: UserRef


KNOWN_TYPES = ("tweet.created", "tweet.deleted", "user.deleted")


class OtherEvent(EventBase):
    """A type this version does not know: recorded, otherwise ignored, so a
    producer that is upgraded first does not stall its queue."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        json_schema_extra={"not": {"enum": list(KNOWN_TYPES)}})
    data: dict = {}


def _event_kind(value) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in KNOWN_TYPES else "other"


Event = Annotated[Annotated[TweetCreated, Tag("tweet.created")]
                  | Annotated[TweetDeleted, Tag("tweet.deleted")]
                  | Annotated[UserDeleted, Tag("user.deleted")]
                  | Annotated[OtherEvent, Tag("other")],
                  Discriminator(_event_kind)]


class EventBatch(RequestBody):
    events: list[Event] = Field(min_length=1, max_length=1000)
