"""common.db.execute and write_one: a statement is its own transaction, in
autocommit, unless the request already holds one (an Idempotency-Key's
claim), which it joins."""
from __future__ import annotations

from sqlalchemy import insert, select

import tweet_service.routes
from common.db import execute, get_session, request_session, write_one
from tweet_service.models import Tweet
from contract.api import create_user

KEY = {"Idempotency-Key": "5b0f6c8e-write-one"}
VALUES = {"user_id": 1, "content": "hi"}
ALL_TWEETS = select(Tweet.__table__)
INSERT_TWEET = insert(Tweet.__table__).returning(Tweet.id)


def test_alone_it_is_committed_when_it_returns(stack):
    with stack.tweet_app.test_request_context("/tweets", method="POST"):
        row = write_one(INSERT_TWEET, VALUES)
        assert stack.tweet_count() == 1  # seen from another connection, before the request ends
        assert request_session() is None  # no session was opened for it
    assert row.id == 1


def test_in_an_open_transaction_it_commits_or_rolls_back_with_it(stack):
    with stack.tweet_app.test_request_context("/tweets", method="POST"):
        session = get_session()
        session.execute(select(1))  # the request's transaction is open
        write_one(INSERT_TWEET, VALUES)
        assert stack.tweet_count() == 0  # not committed yet
        session.rollback()
        assert stack.tweet_count() == 0

        session.execute(select(1))
        write_one(INSERT_TWEET, VALUES)
        session.commit()
        assert stack.tweet_count() == 1


def test_a_keyed_post_that_fails_after_the_insert_stores_nothing(stack, monkeypatch):
    create_user(stack)

    def fail(*_args, **_kwargs):
        raise RuntimeError("the response could not be built")

    with monkeypatch.context() as patched:
        patched.setattr(tweet_service.routes, "_body", fail)
        assert stack.tweets.post("/tweets", json=VALUES, headers=KEY).status_code == 500
    assert stack.tweet_count() == 0  # the insert went with the claim's transaction

    retry = stack.tweets.post("/tweets", json=VALUES, headers=KEY)
    assert retry.status_code == 201  # and the key is free again
    assert stack.tweet_count() == 1


def test_a_read_alone_sees_what_is_committed_and_opens_no_session(stack):
    with stack.tweet_app.test_request_context("/tweets"):
        write_one(INSERT_TWEET, VALUES)
        assert [row.content for row in execute(ALL_TWEETS)] == ["hi"]
        assert request_session() is None


def test_a_read_in_an_open_transaction_sees_its_uncommitted_writes(stack):
    with stack.tweet_app.test_request_context("/tweets"):
        session = get_session()
        session.execute(select(1))
        write_one(INSERT_TWEET, VALUES)
        assert len(execute(ALL_TWEETS)) == 1  # read in the transaction, not beside it
        session.rollback()
        assert execute(ALL_TWEETS) == []
