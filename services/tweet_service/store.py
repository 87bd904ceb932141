"""Every read and write of tweets: the one data-access layer of the service.

The store owns the database's pools and sessions and begins and commits
every transaction; it asks the user service (user_client.py) whether an
author exists and who the authors of a page are. It raises the problems of
its domain: no such tweet (404), no such user (422), the user service down (503).

Events: a new or deleted tweet commits its event (tweet.created,
tweet.deleted) for the feed with it, through the outbox (common.outbox);
user.deleted from the user service (common.inbox) deletes the user's tweets.
"""
from __future__ import annotations

import logging

from sqlalchemy import BigInteger, delete, insert, select, text
from sqlalchemy.orm import Session

from common import idempotency, user_locks
from common.db import Database, utcnow
from common.idempotency import Replay, Requested
from common.inbox import UserDeleted, first_seen
from common.outbox import HttpSink, Relay, emit
from common.pagination import page
from common.problems import DependencyUnavailable, Problem
from common.request_id import current_request_id
from common.schemas import rfc3339

from .models import DeletedUser, IdempotencyKey, OutboxEvent, ReceivedEvent, Tweet
from .schemas import (AuthoredTweetBatch, AuthoredTweetPage, TweetBatch, TweetCreate, TweetOut,
                      TweetPage, TweetsQuery)
from .settings import TweetSettings
from .user_client import UserClient, UserServiceUnavailable

log = logging.getLogger(__name__)

_TWEETS = Tweet.__table__
# Built once: building the statement per request costs a POST measurably.
_INSERT = insert(_TWEETS).returning(*_TWEETS.c)
# A keyless POST on PostgreSQL: the author's lock (common.user_locks), then
# the tweet and its event in one statement. One query string is one round
# trip, and PostgreSQL runs its statements as one transaction, each seeing
# what was committed when it began: the insert sees any deletion that held
# the lock before it. No row once the author's deletion has been applied
# here (deleted_users).
_INSERT_WITH_EVENT = text(user_locks.SHARED + """;
WITH tweet AS (
    INSERT INTO tweets (user_id, content, created_at)
    SELECT :user_id, :content, :created_at
    WHERE NOT EXISTS (SELECT 1 FROM deleted_users WHERE user_id = :user_id)
    RETURNING id
), event AS (
    INSERT INTO outbox (destination, topic, payload, request_id, created_at)
    SELECT 'feed', 'tweet.created',
           json_build_object('tweet_id', id, 'user_id', CAST(:user_id AS bigint),
                             'content', CAST(:content AS text),
                             'created_at', CAST(:created_text AS text)),
           :request_id, :created_at
    FROM tweet
)
SELECT id FROM tweet
""").columns(id=BigInteger())


def _user_service_down() -> DependencyUnavailable:
    return DependencyUnavailable("The user service is unavailable; nothing was stored.")


def _not_found(tweet_id: int) -> Problem:
    return Problem(404, f"Tweet {tweet_id} does not exist.")


def _unknown_user(user_id: int) -> Problem:
    return Problem(422, f"User {user_id} does not exist.", type="urn:chirp:problem:unknown-user",
                   errors=[{"field": "user_id", "message": "no such user"}])


class TweetStore:
    def __init__(self, settings: TweetSettings):
        self.db = Database(settings)
        self.users = UserClient(settings)
        self.outbox = Relay(self.db.engine, OutboxEvent.__table__, "tweets")
        self.outbox.add_destination("feed", HttpSink(settings.feed_service_url))
        self.outbox.install(self.db.sessions)
        self._one_statement_insert = self.db.engine.dialect.name == "postgresql"

    def create(self, new: TweetCreate, requested: Requested | None) -> TweetOut | Replay:
        """Store a tweet of an existing user, with its event. Without an
        Idempotency-Key, on PostgreSQL, it is one query string in autocommit
        mode: one round trip."""
        self._check_author(new.user_id)
        created_at = utcnow()
        values = {"user_id": new.user_id, "content": new.content, "created_at": created_at}
        if requested is None and self._one_statement_insert:
            rows = self.db.execute(_INSERT_WITH_EVENT, {
                **values, "created_text": rfc3339(created_at), "request_id": current_request_id(),
                "user_lock_key": user_locks.user_key(new.user_id)})
            if not rows:
                raise _unknown_user(new.user_id)
            self.outbox.wake()
            return TweetOut.model_validate({**values, "id": rows[0].id})
        with self.db.session() as session:
            user_locks.lock_users(session, [new.user_id])
            if requested and (replay := idempotency.claim(session, IdempotencyKey, requested)):
                return replay
            if session.get(DeletedUser, new.user_id) is not None:
                raise _unknown_user(new.user_id)
            created = TweetOut.model_validate(session.execute(_INSERT, values).one())
            emit(session, "feed", "tweet.created", {
                "tweet_id": created.id, "user_id": created.user_id, "content": created.content,
                "created_at": rfc3339(created.created_at)})
            if requested:
                idempotency.record(session, IdempotencyKey, requested, 201, created)
            session.commit()
        return created

    def _check_author(self, user_id: int) -> None:
        try:
            exists = self.users.user_exists(user_id)
        except UserServiceUnavailable:
            raise _user_service_down() from None
        if not exists:
            raise _unknown_user(user_id)

    def get(self, tweet_id: int) -> TweetOut:
        rows = self.db.execute(select(_TWEETS).where(_TWEETS.c.id == tweet_id))
        if not rows:
            raise _not_found(tweet_id)
        return TweetOut.model_validate(rows[0])

    def page(self, query: TweetsQuery):
        """A page of tweets, newest first: one autocommit SELECT of rows
        (read and sent, never changed), then, with `expand=author`, one
        batch lookup of their authors. With `ids`, a batch lookup instead."""
        if query.ids is not None:
            return self._batch(query.split(query.ids), query.expand == "author")
        statement = select(_TWEETS).order_by(_TWEETS.c.id.desc()).limit(query.limit + 1)
        if query.user_id is not None:
            statement = statement.where(_TWEETS.c.user_id == query.user_id)
        if query.user_ids is not None:
            statement = statement.where(_TWEETS.c.user_id.in_(query.split(query.user_ids)))
        if query.after_id:
            statement = statement.where(_TWEETS.c.id < query.after_id)
        tweets, next_cursor = page(self.db.execute(statement), query.limit)
        if query.expand != "author":
            return TweetPage.model_validate({"data": tweets, "next_cursor": next_cursor})
        return AuthoredTweetPage.model_validate(
            {"data": self._with_authors(tweets), "next_cursor": next_cursor})

    def _batch(self, ids: list[int], with_authors: bool) -> TweetBatch | AuthoredTweetBatch:
        rows = {row.id: row for row in self.db.execute(select(_TWEETS).where(_TWEETS.c.id.in_(ids)))}
        found = [rows[i] for i in ids if i in rows]
        missing = [i for i in ids if i not in rows]
        if not with_authors:
            return TweetBatch.model_validate({"data": found, "missing": missing})
        return AuthoredTweetBatch.model_validate(
            {"data": self._with_authors(found), "missing": missing})

    def _with_authors(self, tweets: list) -> list[dict]:
        """Each tweet with its author (None if gone), from one batch lookup."""
        try:
            authors = self.users.get_users(sorted({t.user_id for t in tweets}))
        except UserServiceUnavailable:
            raise _user_service_down() from None
        return [{**t._asdict(), "author": authors.get(t.user_id)} for t in tweets]

    def delete(self, tweet_id: int) -> None:
        with self.db.session() as session:
            gone = session.execute(delete(_TWEETS).where(_TWEETS.c.id == tweet_id)
                                   .returning(_TWEETS.c.user_id)).first()
            if gone is None:
                raise _not_found(tweet_id)
            emit(session, "feed", "tweet.deleted", {"tweet_id": tweet_id, "user_id": gone.user_id})
            session.commit()

    # -- events from other services

    def apply_events(self, events: list) -> None:
        """Apply the user service's events in one transaction; a replayed one
        changes nothing (common.inbox)."""
        with self.db.session() as session:
            # First, so that the inserts in flight for these users commit before their deletion.
            user_locks.lock_users(session, [event.data.user_id for event in events
                                            if isinstance(event, UserDeleted)], exclusive=True)
            new = first_seen(session, ReceivedEvent, [event.id for event in events])
            for event in events:
                if event.id not in new:
                    log.info("event %s (%s, request %s) already applied", event.id, event.type,
                             event.request_id)
                    continue
                new.discard(event.id)  # a repeat within the batch is a replay too
                if isinstance(event, UserDeleted):
                    self._forget_user(session, event.data.user_id)
                log.info("event %s (%s, request %s) applied", event.id, event.type,
                         event.request_id)
            session.commit()

    @staticmethod
    def _forget_user(session: Session, user_id: int) -> None:
        """Delete the user's tweets, and refuse any that a request checked
        against the user service just before the deletion (under the user's
        lock, taken by apply_events: common.user_locks)."""
        user_locks.record_deletion(session, DeletedUser, user_id)
        session.execute(delete(_TWEETS).where(_TWEETS.c.user_id == user_id))

    def close(self) -> None:
        self.outbox.stop()
        self.users.close()
        self.db.dispose()
