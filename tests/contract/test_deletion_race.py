"""A user's deletion and that user's tweets in flight, on PostgreSQL: none
outlives the deletion, whichever starts first, in the tweet service or in
the feed's timelines (common.user_locks).

Each test holds one side open in a raw transaction, as a request would be
caught mid-way, runs the other side through the service, and lets go once
that side waits for the lock (or has finished: without the lock it does not
wait, and the test shows what that leaves behind)."""
from __future__ import annotations

import threading

import pytest
import redis
from sqlalchemy import event, text

from common import user_locks
from contract.api import assert_problem, create_user, wait_until

UNKNOWN_USER = "urn:chirp:problem:unknown-user"


def _waiting_for_a_user_lock(engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )).scalar_one() > 0


def _in_background(call) -> tuple[threading.Thread, dict]:
    result = {}
    thread = threading.Thread(target=lambda: result.update(response=call()))
    thread.start()
    return thread, result


def _let_go(engine, transaction, thread) -> bool:
    """Commit `transaction` once `thread` waits for a lock in `engine`'s
    database or is done; whether it was waiting."""
    wait_until(lambda: _waiting_for_a_user_lock(engine) or not thread.is_alive(), timeout=5)
    waited = thread.is_alive()
    transaction.commit()
    thread.join(timeout=10)
    return waited


def _events(event_id: str, type: str, **data) -> dict:
    return {"events": [{"id": event_id, "type": type, "request_id": "race",
                        "occurred_at": "2026-11-30T12:00:00.000000Z", "data": data}]}


def _lock_exclusively(connection, user_id: int) -> None:
    connection.execute(text(f"SELECT pg_advisory_xact_lock({user_locks.NAMESPACE}, :key)"),
                       {"key": user_locks.user_key(user_id)})


def test_a_deletion_waits_for_the_tweets_in_flight_and_deletes_them(postgres_stack):
    user = create_user(postgres_stack)["id"]
    with postgres_stack.tweet_db().connect() as in_flight:
        # A POST /tweets past its checks, its insert not yet committed.
        transaction = in_flight.begin()
        in_flight.execute(text(user_locks.SHARED), {"user_lock_key": user_locks.user_key(user)})
        in_flight.execute(text("INSERT INTO tweets (user_id, content, created_at) "
                               "VALUES (:user, 'in flight', now())"), {"user": user})
        client = postgres_stack.tweet_app.test_client()
        thread, result = _in_background(lambda: client.post(
            "/internal/events", json=_events("users:1", "user.deleted", user_id=user)))
        waited = _let_go(postgres_stack.tweet_db(), transaction, thread)

    assert result["response"].status_code == 204
    assert postgres_stack.count(postgres_stack.tweet_db(), "tweets") == 0
    assert waited
    late = postgres_stack.tweets.post("/tweets", json={"user_id": user, "content": "late"})
    assert_problem(late, 422, UNKNOWN_USER)


@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": "race-1"}],
                         ids=["one-round-trip", "idempotency-key"])
def test_a_tweet_waits_for_a_deletion_in_flight_and_is_refused(postgres_stack, headers):
    user = create_user(postgres_stack)["id"]
    with postgres_stack.tweet_db().connect() as deleting:
        # The tweet service applying user.deleted, not yet committed.
        transaction = deleting.begin()
        _lock_exclusively(deleting, user)
        deleting.execute(text("INSERT INTO deleted_users (user_id, deleted_at) "
                              "VALUES (:user, now())"), {"user": user})
        deleting.execute(text("DELETE FROM tweets WHERE user_id = :user"), {"user": user})
        client = postgres_stack.tweet_app.test_client()
        thread, result = _in_background(lambda: client.post(
            "/tweets", json={"user_id": user, "content": "just checked"}, headers=headers))
        waited = _let_go(postgres_stack.tweet_db(), transaction, thread)

    assert_problem(result["response"], 422, UNKNOWN_USER)
    assert postgres_stack.count(postgres_stack.tweet_db(), "tweets") == 0
    assert waited


def test_a_tweet_without_a_key_takes_the_lock_in_its_one_round_trip(postgres_stack):
    user = create_user(postgres_stack)["id"]
    database = postgres_stack.tweet_app.extensions["store"].db
    requester = threading.get_ident()  # not the outbox relay's thread
    sent = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() == requester:
            sent.append(statement)

    for engine in (database.engine, database.autocommit_engine):
        event.listen(engine, "before_cursor_execute", record)
    try:
        response = postgres_stack.tweets.post("/tweets", json={"user_id": user, "content": "hi"})
    finally:
        for engine in (database.engine, database.autocommit_engine):
            event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 201
    [statement] = sent  # one query string: one round trip
    assert statement.index("pg_advisory_xact_lock_shared") < statement.index("INSERT INTO tweets")


@pytest.fixture
def feed(feed_postgres_stack):
    """The three services under gunicorn on PostgreSQL, emptied."""
    feed_postgres_stack.reset()
    return feed_postgres_stack


def test_a_fan_out_waits_for_its_authors_deletion_in_flight(feed):
    """The fan-out of a tweet.created reads the author's followers, then
    writes the tweet into their cached timelines. Were it to read them just
    before the author's deletion commits, and write after the deletion has
    dropped those timelines and a read has rebuilt them, the tweet would
    stay there. Here the reader's cached timeline stands for the rebuilt one."""
    author, reader = feed.create_user("Leaving"), feed.create_user("Reader")
    feed.follow(reader, author)
    assert feed.timeline_ids(reader) == []  # cached now
    with feed.engines["feed_service"].connect() as deleting:
        # The feed applying user.deleted: the follows deleted, not yet committed.
        transaction = deleting.begin()
        _lock_exclusively(deleting, author)
        deleting.execute(text("DELETE FROM follows WHERE followee_id = :user"), {"user": author})
        thread, result = _in_background(lambda: feed.request(
            "POST", "feed_service", "/internal/events", json=_events(
                "tweets:1", "tweet.created", tweet_id=1, user_id=author, content="in flight",
                created_at="2026-11-30T12:00:00.000000Z")))
        waited = _let_go(feed.engines["feed_service"], transaction, thread)

    assert result["response"].status_code == 204
    with redis.Redis.from_url(feed.redis_url) as client:
        assert client.zscore(f"timeline:{reader}", 1) is None
        assert client.exists(f"timeline:{reader}")  # it was there to write into
    assert waited


def test_a_deletion_waits_for_the_follows_in_flight_and_deletes_them(feed):
    leaving, reader = feed.create_user("Leaving"), feed.create_user("Reader")
    with feed.engines["feed_service"].connect() as in_flight:
        # A PUT /follows past its checks, its insert not yet committed.
        transaction = in_flight.begin()
        for user in (leaving, reader):
            in_flight.execute(text(user_locks.SHARED), {"user_lock_key": user_locks.user_key(user)})
        in_flight.execute(text("INSERT INTO follows (follower_id, followee_id, created_at) "
                               "VALUES (:reader, :leaving, now())"),
                          {"reader": reader, "leaving": leaving})
        thread, result = _in_background(lambda: feed.request(
            "POST", "feed_service", "/internal/events",
            json=_events("users:1", "user.deleted", user_id=leaving)))
        waited = _let_go(feed.engines["feed_service"], transaction, thread)

    assert result["response"].status_code == 204
    assert feed.count("feed_service", "follows") == 0
    assert waited
    assert feed.request("PUT", "feed_service", f"/follows/{reader}/{leaving}").status_code == 404


def test_a_follow_waits_for_a_deletion_in_flight_and_is_refused(feed):
    leaving, reader = feed.create_user("Leaving"), feed.create_user("Reader")
    with feed.engines["feed_service"].connect() as deleting:
        # The feed applying user.deleted, not yet committed.
        transaction = deleting.begin()
        _lock_exclusively(deleting, leaving)
        deleting.execute(text("INSERT INTO deleted_users (user_id, deleted_at) "
                              "VALUES (:user, now())"), {"user": leaving})
        thread, result = _in_background(lambda: feed.request(
            "PUT", "feed_service", f"/follows/{reader}/{leaving}"))
        waited = _let_go(feed.engines["feed_service"], transaction, thread)

    assert result["response"].status_code == 404, result["response"].text
    assert feed.count("feed_service", "follows") == 0
    assert waited
