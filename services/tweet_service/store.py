"""Every read and write of tweets: the one data-access layer of the service.

The store owns the database's pools and sessions and begins and commits
every transaction; it asks the user service (user_client.py) whether an
author exists and who the authors of a page are. It raises the problems of
its domain: no such tweet (404), no such user (422), the user service down (503).
"""
from __future__ import annotations

from sqlalchemy import delete, insert, select

from common import idempotency
from common.db import Database
from common.idempotency import Replay, Requested
from common.pagination import page
from common.problems import DependencyUnavailable, Problem

from .models import IdempotencyKey, Tweet
from .schemas import AuthoredTweetPage, TweetCreate, TweetOut, TweetPage, TweetsQuery
from .settings import TweetSettings
from .user_client import UserClient, UserServiceUnavailable

_TWEETS = Tweet.__table__
# Built once: building the statement per request costs a POST measurably.
_INSERT = insert(_TWEETS).returning(*_TWEETS.c)


def _user_service_down() -> DependencyUnavailable:
    return DependencyUnavailable("The user service is unavailable; nothing was stored.")


def _not_found(tweet_id: int) -> Problem:
    return Problem(404, f"Tweet {tweet_id} does not exist.")


class TweetStore:
    def __init__(self, settings: TweetSettings):
        self.db = Database(settings)
        self.users = UserClient(settings)

    def create(self, new: TweetCreate, requested: Requested | None) -> TweetOut | Replay:
        """Store a tweet of an existing user. Without an Idempotency-Key it
        is one autocommit INSERT: one round trip."""
        self._check_author(new.user_id)
        values = {"user_id": new.user_id, "content": new.content}
        if requested is None:
            (row,) = self.db.execute(_INSERT, values)
            return TweetOut.model_validate(row)
        with self.db.session() as session:
            if replay := idempotency.claim(session, IdempotencyKey, requested):
                return replay
            created = TweetOut.model_validate(session.execute(_INSERT, values).one())
            idempotency.record(session, IdempotencyKey, requested, 201, created)
            session.commit()
        return created

    def _check_author(self, user_id: int) -> None:
        try:
            exists = self.users.user_exists(user_id)
        except UserServiceUnavailable:
            raise _user_service_down() from None
        if not exists:
            raise Problem(422, f"User {user_id} does not exist.",
                          type="urn:chirp:problem:unknown-user",
                          errors=[{"field": "user_id", "message": "no such user"}])

    def get(self, tweet_id: int) -> TweetOut:
        rows = self.db.execute(select(_TWEETS).where(_TWEETS.c.id == tweet_id))
        if not rows:
            raise _not_found(tweet_id)
        return TweetOut.model_validate(rows[0])

    def page(self, query: TweetsQuery) -> TweetPage | AuthoredTweetPage:
        """A page of tweets, newest first: one autocommit SELECT of rows
        (read and sent, never changed), then, with `expand=author`, one
        batch lookup of their authors."""
        statement = select(_TWEETS).order_by(_TWEETS.c.id.desc()).limit(query.limit + 1)
        if query.user_id is not None:
            statement = statement.where(_TWEETS.c.user_id == query.user_id)
        if query.after_id:
            statement = statement.where(_TWEETS.c.id < query.after_id)
        tweets, next_cursor = page(self.db.execute(statement), query.limit)
        if query.expand != "author":
            return TweetPage.model_validate({"data": tweets, "next_cursor": next_cursor})
        try:
            authors = self.users.get_users(sorted({t.user_id for t in tweets}))
        except UserServiceUnavailable:
            raise _user_service_down() from None
        data = [{**t._asdict(), "author": authors.get(t.user_id)} for t in tweets]
        return AuthoredTweetPage.model_validate({"data": data, "next_cursor": next_cursor})

    def delete(self, tweet_id: int) -> None:
        with self.db.session() as session:
            if session.execute(delete(_TWEETS).where(_TWEETS.c.id == tweet_id)).rowcount == 0:
                raise _not_found(tweet_id)
            session.commit()

    def close(self) -> None:
        self.users.close()
        self.db.dispose()
