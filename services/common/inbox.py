"""The consuming end of common.outbox: `POST /internal/events`.

A consumer applies a batch in one transaction of its own database and
records each event id in its `received_events` table in that same
transaction, so an event delivered again (at least once means sometimes
twice) changes nothing the second time.
"""
from __future__ import annotations

from datetime import datetime
from collections.abc import Callable
from typing import Annotated, Literal, Union

from apiflask import APIBlueprint

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, create_model
from sqlalchemy import String
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import UTCDateTime, utcnow
from .schemas import Id, RequestBody

EVENTS_PATH = "/internal/events"
MAX_BATCH = 100  # events per delivery: common.outbox sends batches of 100
RFC3339 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"


class ReceivedEventMixin:
    """Columns of the `received_events` table each consumer keeps in its own database."""

    __tablename__ = "received_events"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


def create_received_events_table() -> None:
    """The migration that adds a consumer's `received_events`. Frozen like
    any migration: a later change gets a new function."""
    import sqlalchemy as sa
    from alembic import op

    op.create_table(
        "received_events",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_received_events_received_at", "received_events", ["received_at"])


def dialect_insert(session: Session, model):
    """INSERT with ON CONFLICT, in the session's SQL dialect."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model)


def first_seen(session: Session, model, event_ids: list[str]) -> set[str]:
    """Record the ids in the session's transaction; those never seen before.
    A duplicate delivered concurrently waits for the first to commit (or
    roll back) on the primary key, then counts as seen (or as new)."""
    ids = list(dict.fromkeys(event_ids))
    now = utcnow()
    statement = (dialect_insert(session, model)
                 .values([{"event_id": i, "received_at": now} for i in ids])
                 .on_conflict_do_nothing(index_elements=["event_id"])
                 .returning(model.event_id))
    return set(session.scalars(statement))


def events_blueprint(batch_model: type[RequestBody], apply: Callable[[list], None],
                     unavailable: str = "The database is unavailable") -> APIBlueprint:
    """The consumer's route: `apply(events)` applies a valid batch in one
    transaction (first_seen drops the replays) and commits it."""
    bp = APIBlueprint("events", __name__, tag="Internal")

    @bp.post(EVENTS_PATH)
    @bp.input(batch_model, arg_name="batch")
    @bp.output({}, status_code=204, description="Every event applied (a replayed one changes nothing)")
    @bp.doc(responses={422: "A malformed event: none of the batch is applied",
                       503: f"{unavailable}: send again later"})
    def receive_events(batch):
        """Internal: other services' outboxes deliver here. Not routed by the Ingress."""
        apply(batch.events)
        return ""

    return bp


# -- the wire format (common.outbox.Relay._event)


class EventBase(RequestBody):
    model_config = ConfigDict(extra="ignore")  # producers may add fields before we read them

    id: Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,200}$")] = Field(
        description="`<source>:<outbox id>`: unique per event, kept to drop replays.")
    request_id: str | None = Field(None, max_length=128)
    # Kept as sent (it is logged, never computed with).
    occurred_at: Annotated[str, StringConstraints(pattern=RFC3339)] = Field(
        description="When the change was committed: RFC 3339, with its offset.")


class TweetRef(BaseModel):
    tweet_id: Id
    user_id: Id


class UserRef(BaseModel):
    user_id: Id


class NewTweet(TweetRef):
    # The tweet itself, so a consumer need not ask for it (absent from older producers).
    content: str | None = None
    created_at: str | None = None


class TweetCreated(EventBase):
    type: Literal["tweet.created"]
    data: NewTweet


class TweetDeleted(EventBase):
    type: Literal["tweet.deleted"]
    data: TweetRef


class UserDeleted(EventBase):
    type: Literal["user.deleted"]
    data: UserRef


class UserUpdated(EventBase):
    type: Literal["user.updated"]
    data: UserRef


def event_batch(name: str, *known: type[EventBase]) -> type[RequestBody]:
    """The body of POST /internal/events for a consumer that acts on the
    `known` event types. Any other type is accepted, recorded and ignored,
    so a producer can be upgraded before its consumers."""
    types = {model.model_fields["type"].annotation.__args__[0]: model for model in known}
    other = create_model(
        f"{name}OtherEvent", __base__=EventBase, __doc__="An event this service ignores.",
        type=(Annotated[str, StringConstraints(min_length=1, max_length=100)],
              Field(json_schema_extra={"not": {"enum": list(types)}})),
        data=(dict, {}))

    def kind(value) -> str:
        found = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        return found if isinstance(found, str) and found in types else "other"

    choices = [Annotated[model, Tag(t)] for t, model in types.items()]
    event = Annotated[Union[(*choices, Annotated[other, Tag("other")])], Discriminator(kind)]
    return create_model(name, __base__=RequestBody,
                        events=(list[event], Field(min_length=1, max_length=MAX_BATCH)))
