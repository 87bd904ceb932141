"""Fault scenarios for the feed and the events that feed it (contract v2:
"Propagation survives faults"). All three services under gunicorn; the
tweet service, the producer of tweet events, on its own PostgreSQL (the
event transport: its outbox is the queue), so that server can be killed
mid-stream while the user and feed databases stay up.

Each scenario checks the end state exactly: every acknowledged tweet is in
every timeline it belongs to, once, and nothing else is."""
from __future__ import annotations

import itertools
import threading
import time

import pytest
import redis

from support.feed_stack import FeedStack

from faults.helpers import wait_until

pytestmark = pytest.mark.slow
_counter = itertools.count(1)
QUIET = {"LOG_LEVEL": "warning", "GUNICORN_ACCESS_LOG": ""}


@pytest.fixture
def feed_world(user_pg, tweet_pg, fault_redis):
    """A FeedStack whose tweet database lives on its own server (tweet_pg)."""
    for pg in (user_pg, tweet_pg):
        if pg.postmaster_pid() is None:
            pg.start()
    with fault_redis.client() as client:
        client.flushall()
    n = next(_counter)
    urls = {"user_service": user_pg.create_database(f"feedf_users_{n}"),
            "tweet_service": tweet_pg.create_database(f"feedf_tweets_{n}"),
            "feed_service": user_pg.create_database(f"feedf_feed_{n}")}
    stack = FeedStack(f"faults-{n}", urls, fault_redis.url)
    for process in stack.processes.values():
        process.env.update(QUIET)
    try:
        yield stack.start()
    finally:
        stack.close()
        for pg in (user_pg, tweet_pg):
            if pg.postmaster_pid() is None:
                pg.start()


def _network(stack: FeedStack, authors: int, followers_each: int) -> dict[int, list[int]]:
    """Authors, each followed by the same `followers_each` readers; every
    reader's timeline read once, so it is cached before the tweets come."""
    readers = [stack.create_user(f"reader {i}") for i in range(followers_each)]
    network = {}
    for a in range(authors):
        author = stack.create_user(f"author {a}")
        for reader in readers:
            stack.follow(reader, author)
        network[author] = readers
    for reader in readers:
        assert stack.timeline_ids(reader) == []
    return network


def _expected(stack: FeedStack, network: dict[int, list[int]], tweets: list[dict]) -> dict:
    expected = {}
    for author, readers in network.items():
        for user in (author, *readers):
            expected.setdefault(user, [])
            expected[user] += [t["id"] for t in tweets if t["user_id"] == author]
    return {user: sorted(ids, reverse=True) for user, ids in expected.items()}


def _all_delivered(stack: FeedStack, expected: dict) -> dict:
    return {user: stack.timeline_ids(user) for user in expected}


def test_feed_down_while_tweets_are_posted(feed_world, summary):
    stack = feed_world
    network = _network(stack, authors=3, followers_each=4)
    feed = stack.processes["feed_service"]
    feed.kill()
    tweets = [stack.tweet(author, f"while the feed is down {i}")
              for i in range(10) for author in network]
    queued = stack.count("tweet_service", "outbox")
    assert queued == len(tweets)
    time.sleep(1)  # the relay keeps failing and backing off meanwhile
    feed.start()
    expected = _expected(stack, network, tweets)
    _, waited = wait_until(lambda: _all_delivered(stack, expected) == expected, timeout=20,
                           what="every tweet in every timeline")
    assert stack.count("tweet_service", "outbox") == 0
    # Exactly once in effect: one received event per tweet, none applied twice.
    assert stack.count("feed_service", "received_events") == len(tweets)
    summary("feed service killed while tweets are posted", len(tweets), 0,
            note=f"{queued} events queued; every timeline complete {waited:.1f} s after restart")


def test_event_transport_restarted_mid_stream(feed_world, tweet_pg, summary):
    """The producer's PostgreSQL (the queue) is killed and restarted while
    tweets are posted: acknowledged tweets all arrive, once; refused ones
    (503) never do."""
    stack = feed_world
    network = _network(stack, authors=2, followers_each=3)
    authors = list(network)
    results, stop = [], threading.Event()

    def post_tweets():
        for i in itertools.count():
            if stop.is_set():
                return
            author = authors[i % len(authors)]
            try:
                response = stack.request("POST", "tweet_service", "/tweets",
                                         json={"user_id": author, "content": f"stream {i}"})
            except Exception as error:  # connection trouble: not acknowledged
                results.append(("error", repr(error)))
                continue
            results.append((response.status_code, response))
            time.sleep(0.01)

    poster = threading.Thread(target=post_tweets)
    poster.start()
    try:
        time.sleep(1.0)
        tweet_pg.kill()
        time.sleep(1.5)
        tweet_pg.start()
        time.sleep(1.5)
    finally:
        stop.set()
        poster.join(30)
    acknowledged = [r.json() for status, r in results if status == 201]
    refused = [r for status, r in results if status != 201]
    assert all(status == 503 and is_503_response(r) for status, r in results if status not in
               (201, "error")), [r.text for s, r in results if s not in (201, 503, "error")][:3]
    assert acknowledged and refused, "the outage should have refused some and accepted others"
    expected = _expected(stack, network, acknowledged)
    wait_until(lambda: _all_delivered(stack, expected) == expected, timeout=30,
               what="every acknowledged tweet in every timeline")
    stored = stack.count("tweet_service", "tweets")
    assert stored == len(acknowledged)  # nothing refused was stored
    assert stack.count("feed_service", "received_events") == stored
    summary("tweet PostgreSQL (the event queue) killed mid-stream", len(results), len(refused),
            note=f"{len(acknowledged)} acknowledged, all delivered once; refusals were 503")


def is_503_response(response) -> bool:
    return (response.status_code == 503
            and response.headers.get("Content-Type") == "application/problem+json"
            and response.headers.get("Retry-After", "").isdigit())


def test_flushed_or_restarted_redis_gives_the_same_timelines(feed_world, fault_redis, summary):
    stack = feed_world
    network = _network(stack, authors=3, followers_each=3)
    tweets = [stack.tweet(author, f"t{i}") for i in range(5) for author in network]
    expected = _expected(stack, network, tweets)
    wait_until(lambda: _all_delivered(stack, expected) == expected, timeout=5, what="fan-out")
    with fault_redis.client() as client:
        client.flushall()
    assert _all_delivered(stack, expected) == expected  # rebuilt from the source
    fault_redis.kill()
    try:
        # Reads merge at read time while Redis is away; follows are refused.
        assert _all_delivered(stack, expected) == expected
        reader = next(iter(network.values()))[0]
        refused = stack.request("PUT", "feed_service", f"/follows/{reader}/{reader + 1000}")
        assert refused.status_code in (404, 503)
    finally:
        fault_redis.start()
    more = [stack.tweet(author, "after") for author in network]
    expected = _expected(stack, network, tweets + more)
    wait_until(lambda: _all_delivered(stack, expected) == expected, timeout=10,
               what="timelines after Redis came back")
    summary("Redis timelines flushed, then Redis killed", len(tweets) + len(more), 0,
            note="same timelines rebuilt, then merged at read time, then cached again")


def test_user_deleted_while_their_fan_out_is_in_flight(feed_world, summary):
    stack = feed_world
    readers = [stack.create_user(f"reader {i}") for i in range(40)]
    author = stack.create_user("leaving")
    other = stack.create_user("staying")
    for reader in readers:
        stack.follow(reader, author)
        stack.follow(reader, other)
        stack.timeline_ids(reader)  # cached: the fan-out writes into it
    kept = stack.tweet(other, "kept")["id"]
    theirs = [stack.tweet(author, f"burst {i}")["id"] for i in range(30)]
    assert stack.request("DELETE", "user_service", f"/users/{author}").status_code == 204
    deleted_at = time.monotonic()
    time.sleep(max(0.0, 5 - (time.monotonic() - deleted_at)))
    leftovers = {reader: ids for reader in readers
                 if set(ids := stack.timeline_ids(reader)) & set(theirs)}
    assert leftovers == {}
    assert all(stack.timeline_ids(reader) == [kept] for reader in readers)
    assert stack.count("tweet_service", "tweets", "user_id = :u", u=author) == 0
    assert stack.count("feed_service", "follows",
                       "follower_id = :u OR followee_id = :u", u=author) == 0
    with redis.Redis.from_url(stack.redis_url) as client:
        cached = [int(m) for reader in readers
                  for m in client.zrange(f"timeline:{reader}", 0, -1)]
    assert not set(cached) & set(theirs)
    summary("user deleted while their fan-out is in flight", len(theirs), 0,
            note="nothing of theirs in any timeline, table or cache after 5 s")
