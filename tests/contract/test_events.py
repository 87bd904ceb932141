"""Contract v2: deletion that propagates, and the events that carry it
(`POST /internal/events` on the tweet and feed services), on all three
services under gunicorn."""
from __future__ import annotations

import json

import pytest

from contract.api import wait_until


def _event(event_id: str, type: str, **data) -> dict:
    return {"id": event_id, "type": type, "request_id": "test",
            "occurred_at": "2026-11-30T12:00:00.000000Z", "data": data}


def _post_events(stack, service: str, *events, **kwargs):
    return stack.request("POST", service, "/internal/events", json={"events": list(events)},
                         **kwargs)


def test_a_deleted_user_leaves_nothing_behind_within_5_s(feed_stack):
    gone, friend, fan = (feed_stack.create_user(n) for n in ("Gone", "Friend", "Fan"))
    feed_stack.follow(gone, friend)
    feed_stack.follow(fan, gone)
    feed_stack.follow(fan, friend)
    theirs = [feed_stack.tweet(gone, f"mine {i}")["id"] for i in range(3)]
    kept = feed_stack.tweet(friend, "still here")["id"]
    wait_until(lambda: feed_stack.timeline_ids(fan) == [kept, *theirs[::-1]], timeout=2)

    assert feed_stack.request("DELETE", "user_service", f"/users/{gone}").status_code == 204
    # At once: the tweet service refuses their tweets.
    refused = feed_stack.request("POST", "tweet_service", "/tweets",
                                 json={"user_id": gone, "content": "late"})
    assert refused.status_code == 422, refused.text

    def nothing_left() -> bool:
        follows = [feed_stack.request("GET", "feed_service", "/follows",
                                      params={key: gone}).json()["data"]
                   for key in ("follower_id", "followee_id")]
        return (follows == [[], []]
                and feed_stack.request("GET", "tweet_service", "/tweets",
                                       params={"user_id": gone}).json()["data"] == []
                and all(feed_stack.request("GET", "tweet_service", f"/tweets/{t}").status_code
                        == 404 for t in theirs))

    wait_until(nothing_left, timeout=5)
    assert feed_stack.timeline_ids(fan) == [kept]
    assert feed_stack.timeline_ids(friend) == [kept]
    assert feed_stack.timeline(gone).status_code == 404
    assert feed_stack.count("tweet_service", "tweets", "user_id = :u", u=gone) == 0
    # Delivered, so no longer queued.
    wait_until(lambda: feed_stack.count("user_service", "outbox") == 0, timeout=5)


def test_events_carry_the_request_id_of_the_change(feed_stack):
    author = feed_stack.create_user()
    response = feed_stack.request("POST", "tweet_service", "/tweets",
                                  json={"user_id": author, "content": "traced"},
                                  headers={"X-Request-ID": "trace-me-42"})
    assert response.status_code == 201

    def logged() -> list[dict]:
        lines = [json.loads(line) for line in
                 feed_stack.processes["feed_service"].log_text().splitlines()
                 if line.startswith("{") and "trace-me-42" in line]
        return [line for line in lines if "tweet.created" in line.get("message", "")]

    applied = wait_until(logged, timeout=5)
    assert "applied" in applied[0]["message"]

    def delivered_with_it() -> bool:  # the relay's call carries it (its access log line)
        lines = [json.loads(line) for line in
                 feed_stack.processes["feed_service"].log_text().splitlines()
                 if line.startswith("{")]
        return any(line.get("path") == "/internal/events" and line["request_id"] == "trace-me-42"
                   for line in lines)

    wait_until(delivered_with_it, timeout=5)


def test_a_replayed_event_changes_nothing_twice(feed_stack):
    leaver, star, other = (feed_stack.create_user(n) for n in ("Leaver", "Star", "Other"))
    feed_stack.follow(leaver, star)
    feed_stack.follow(other, star)
    user_deleted = _event("users:9001", "user.deleted", user_id=leaver)
    for _ in range(2):
        assert _post_events(feed_stack, "feed_service", user_deleted).status_code == 204
        # Star lost one follower, not two.
        assert feed_stack.count("feed_service", "follower_counts",
                                "user_id = :u AND followers = 1", u=star) == 1
    assert feed_stack.count("feed_service", "received_events", "event_id = 'users:9001'") == 1

    # In one batch, the repeat is a replay too; so is a batch delivered again.
    tweet = feed_stack.tweet(other, "x")
    batch = [_event("users:9002", "user.deleted", user_id=other)] * 2
    assert _post_events(feed_stack, "tweet_service", *batch).status_code == 204
    assert _post_events(feed_stack, "tweet_service", *batch).status_code == 204
    assert feed_stack.request("GET", "tweet_service", f"/tweets/{tweet['id']}").status_code == 404
    assert feed_stack.count("tweet_service", "received_events", "event_id = 'users:9002'") == 1


@pytest.mark.parametrize("service", ["feed_service", "tweet_service"])
def test_malformed_events_are_refused_and_change_nothing(feed_stack, service):
    user = feed_stack.create_user()
    good = _event("users:1", "user.deleted", user_id=user)
    for body, status in (
        ("not json", 400),
        ({"events": []}, 422),
        ({"events": [{**good, "data": {}}]}, 422),
        ({"events": [good, {**good, "id": ""}]}, 422),
        ({"events": [{**good, "data": {"user_id": "one"}}]}, 422),
        ({"events": [{k: v for k, v in good.items() if k != "occurred_at"}]}, 422),
    ):
        kwargs = {"data": body, "headers": {"Content-Type": "application/json"}} \
            if isinstance(body, str) else {"json": body}
        response = feed_stack.request("POST", service, "/internal/events", **kwargs)
        assert response.status_code == status, (body, response.text)
        assert response.headers["Content-Type"] == "application/problem+json"
    assert feed_stack.count(service, "received_events") == 0
    assert feed_stack.request("GET", "user_service", f"/users/{user}").status_code == 200


def test_an_unknown_event_type_is_recorded_and_ignored(feed_stack):
    response = _post_events(feed_stack, "feed_service",
                            _event("tweets:1", "tweet.liked", tweet_id=1, user_id=1))
    assert response.status_code == 204
    assert feed_stack.count("feed_service", "received_events") == 1


def test_post_tweets_does_not_wait_for_the_feed(feed_stack):
    """Delivery is asynchronous: an author's followers are not counted or
    visited by POST /tweets, so its cost does not depend on them; and the
    tweet is queued with its event, not sent while the client waits."""
    author = feed_stack.create_user()
    feed_process = feed_stack.processes["feed_service"]
    feed_process.stop()
    try:
        tweet = feed_stack.tweet(author, "while the feed is down")
        assert feed_stack.count("tweet_service", "outbox", "destination = 'feed'") == 1
    finally:
        feed_process.start()
    wait_until(lambda: feed_stack.count("tweet_service", "outbox") == 0, timeout=10)
    assert feed_stack.timeline_ids(author) == [tweet["id"]]
