"""The tweet service's events.

Out: tweet.created and tweet.deleted, for the feed, committed with the
tweet through the outbox (common.outbox). In: user.deleted, from the user
service, at /internal/events (common.inbox): the user's tweets are deleted.
"""
from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import BigInteger, delete, insert, text

from common.db import UTCDateTime, execute, get_engine, get_or_404, get_session, request_session, utcnow
from common.inbox import UserDeleted, dialect_insert, event_batch, events_blueprint, first_seen
from common.outbox import emit
from common.request_id import current_request_id
from common.schemas import rfc3339

from .models import DeletedUser, ReceivedEvent, Tweet

log = logging.getLogger(__name__)

# A keyless POST on PostgreSQL: the tweet and its event in one statement, so
# one round trip in autocommit mode (common.db.execute), yet one transaction.
# Refused (no row) once the author's deletion has been applied here.
_INSERT_WITH_EVENT = text("""
WITH tweet AS (
    INSERT INTO tweets (user_id, content, created_at)
    SELECT :user_id, :content, :created_at
    WHERE NOT EXISTS (SELECT 1 FROM deleted_users WHERE user_id = :user_id)
    RETURNING id, created_at
), event AS (
    INSERT INTO outbox (destination, topic, payload, request_id, created_at)
    SELECT 'feed', 'tweet.created',
           json_build_object('tweet_id', id, 'user_id', CAST(:user_id AS bigint),
                             'created_at', CAST(:created_text AS text)),
           :request_id, :created_at
    FROM tweet
)
SELECT id, created_at FROM tweet
""").columns(id=BigInteger(), created_at=UTCDateTime())
_INSERT_TWEET = insert(Tweet.__table__).returning(Tweet.id)


def store_tweet(user_id: int, content: str) -> dict | None:
    """Store a tweet with its tweet.created event; None if the author's
    deletion was applied already. The request's transaction, if it has one
    (an Idempotency-Key's), commits both; otherwise they are committed here."""
    created_at = utcnow()
    tweet = {"user_id": user_id, "content": content, "created_at": created_at}
    session = request_session()
    if get_engine().dialect.name == "postgresql" and not (session and session.in_transaction()):
        rows = execute(_INSERT_WITH_EVENT, {**tweet, "created_text": rfc3339(created_at),
                                            "request_id": current_request_id()})
        if not rows:
            return None
        current_app.extensions["outbox_relay"].wake()
        return {**tweet, "id": rows[0].id}
    session = get_session()
    if session.get(DeletedUser, user_id) is not None:
        return None
    tweet["id"] = session.execute(_INSERT_TWEET, tweet).scalar_one()
    emit(session, "feed", "tweet.created",
         {"tweet_id": tweet["id"], "user_id": user_id, "created_at": rfc3339(created_at)})
    return tweet


def delete_tweet(tweet_id: int) -> None:
    session = get_session()
    tweet = get_or_404(Tweet, tweet_id)
    session.delete(tweet)
    emit(session, "feed", "tweet.deleted", {"tweet_id": tweet.id, "user_id": tweet.user_id})
    session.commit()


# -- in

def apply_events(events: list) -> None:
    """Apply the user service's events, in one transaction (common.inbox)."""
    session = get_session()
    new = first_seen(session, ReceivedEvent, [event.id for event in events])
    for event in events:
        if event.id not in new:
            log.info("event %s (%s, request %s) already applied", event.id, event.type,
                     event.request_id)
            continue
        new.discard(event.id)
        if isinstance(event, UserDeleted):
            _forget_user(session, event.data.user_id)
        log.info("event %s (%s, request %s) applied", event.id, event.type, event.request_id)
    session.commit()


bp = events_blueprint(event_batch("TweetEvents", UserDeleted), apply_events)


def _forget_user(session, user_id: int) -> None:
    session.execute(dialect_insert(session, DeletedUser)
                    .values(user_id=user_id, deleted_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["user_id"]))
    session.execute(delete(Tweet).where(Tweet.user_id == user_id))
