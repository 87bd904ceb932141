"""Contract v2, feed service: follows and home timelines, on all three
services under gunicorn (PostgreSQL + Redis, and SQLite without Redis)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

import feed_service
from feed_service.settings import FeedSettings
from contract.api import assert_problem, assert_recent_utc_timestamp, wait_until



@pytest.fixture
def cached_stack(feed_postgres_stack):
    """The PostgreSQL stack alone: the one with a timeline cache."""
    feed_postgres_stack.reset()
    return feed_postgres_stack


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# -- follows


def test_follow_is_created_then_found_then_deleted(feed_stack):
    ali, bo = feed_stack.create_user("Ali"), feed_stack.create_user("Bo")
    created = feed_stack.request("PUT", "feed_service", f"/follows/{ali}/{bo}")
    assert created.status_code == 201
    assert created.headers["Location"].endswith(f"/follows/{ali}/{bo}")
    follow = created.json()
    assert follow["follower_id"] == ali and follow["followee_id"] == bo
    assert_recent_utc_timestamp(follow["created_at"])

    again = feed_stack.request("PUT", "feed_service", f"/follows/{ali}/{bo}")
    assert again.status_code == 200 and again.json() == follow
    assert feed_stack.request("GET", "feed_service", f"/follows/{ali}/{bo}").json() == follow
    problem(feed_stack.request("GET", "feed_service", f"/follows/{bo}/{ali}"), 404)

    for _ in range(2):  # 204 whether or not it existed
        assert feed_stack.request("DELETE", "feed_service", f"/follows/{ali}/{bo}").status_code == 204
    problem(feed_stack.request("GET", "feed_service", f"/follows/{ali}/{bo}"), 404)
    assert feed_stack.count("feed_service", "follows") == 0


def test_follow_needs_two_existing_distinct_users(feed_stack):
    ali = feed_stack.create_user()
    problem(feed_stack.request("PUT", "feed_service", f"/follows/{ali}/99"), 404)
    problem(feed_stack.request("PUT", "feed_service", f"/follows/99/{ali}"), 404)
    body = problem(feed_stack.request("PUT", "feed_service", f"/follows/{ali}/{ali}"), 422)
    assert body["errors"]
    problem(feed_stack.request("PUT", "feed_service", f"/follows/0/{ali}"), 404)
    assert feed_stack.count("feed_service", "follows") == 0


def test_following_a_deleted_user_is_404_at_once_though_the_old_follow_is_still_there(feed_stack):
    ali, deleted = feed_stack.create_user("Ali"), feed_stack.create_user("Gone")
    assert feed_stack.request("DELETE", "user_service", f"/users/{deleted}").status_code == 204
    wait_until(lambda: feed_stack.count("feed_service", "deleted_users") == 1, 5)
    # The follow as it stands between the deletion and its event's arrival,
    # when the user service no longer knows the followee.
    with feed_stack.engines["feed_service"].begin() as connection:
        connection.execute(text("INSERT INTO follows (follower_id, followee_id, created_at) "
                                "VALUES (:follower, :followee, :at)"),
                           {"follower": ali, "followee": deleted, "at": datetime.now(timezone.utc)})
    problem(feed_stack.request("PUT", "feed_service", f"/follows/{ali}/{deleted}"), 404)
    problem(feed_stack.request("PUT", "feed_service", f"/follows/{deleted}/{ali}"), 404)


def test_follow_with_the_user_service_down_is_503_and_stores_nothing(feed_stack, closed_port_url):
    ali, bo = feed_stack.create_user("Ali"), feed_stack.create_user("Bo")
    app = feed_service.create_app(FeedSettings(
        database_url=feed_stack.db_urls["feed_service"], redis_url=feed_stack.redis_url,
        user_service_url=closed_port_url))
    try:
        response = app.test_client().put(f"/follows/{ali}/{bo}")
        assert_problem(response, 503)
        assert int(response.headers["Retry-After"]) > 0
    finally:
        app.extensions["store"].close()
    assert feed_stack.count("feed_service", "follows") == 0


def test_follows_list_newest_first_by_follower_or_followee(feed_stack):
    ali, *others = [feed_stack.create_user(f"U{i}") for i in range(5)]
    for other in others:
        feed_stack.follow(ali, other)
        feed_stack.follow(other, ali)

    def all_pages(**params):
        items, cursor = [], None
        while True:
            response = feed_stack.request("GET", "feed_service", "/follows",
                                          params={**params, "limit": 3,
                                                  **({"cursor": cursor} if cursor else {})})
            assert response.status_code == 200, response.text
            items += response.json()["data"]
            if not (cursor := response.json()["next_cursor"]):
                return items

    following = all_pages(follower_id=ali)
    assert [f["followee_id"] for f in following] == others[::-1]
    assert {f["follower_id"] for f in following} == {ali}
    followers = all_pages(followee_id=ali)
    assert [f["follower_id"] for f in followers] == others[::-1]

    for params in ({}, {"follower_id": ali, "followee_id": ali}, {"follower_id": "x"},
                   {"follower_id": ali, "cursor": "nope"}, {"follower_id": ali, "limit": 101}):
        problem(feed_stack.request("GET", "feed_service", "/follows", params=params), 400)


# -- timelines


def test_timeline_of_an_unknown_user_is_404(feed_stack):
    problem(feed_stack.timeline(42), 404)


def test_timeline_is_own_and_followees_tweets_newest_first_with_authors(feed_stack):
    ali, bo, cy, di = (feed_stack.create_user(n) for n in ("Ali", "Bo", "Cy", "Di"))
    feed_stack.follow(ali, bo)
    feed_stack.follow(ali, cy)
    assert feed_stack.timeline(ali).json() == {"data": [], "next_cursor": None}
    posted = [feed_stack.tweet(author, f"tweet {i}") for i, author in
              enumerate([bo, di, ali, cy, bo, di, cy])]
    expected = [t["id"] for t in posted if t["user_id"] in (ali, bo, cy)][::-1]

    wait_until(lambda: feed_stack.timeline_ids(ali) == expected, timeout=2)
    first = feed_stack.timeline(ali, limit=2).json()
    assert [t["id"] for t in first["data"]] == expected[:2]
    tweet = first["data"][0]
    assert tweet["author"] == {"id": cy, "name": "Cy", "handle": None}
    assert tweet["content"] == "tweet 6" and tweet["user_id"] == cy
    assert_recent_utc_timestamp(tweet["created_at"])
    second = feed_stack.timeline(ali, limit=2, cursor=first["next_cursor"]).json()
    assert [t["id"] for t in second["data"]] == expected[2:4]
    # Bo follows nobody: their own tweets only.
    assert feed_stack.timeline_ids(bo) == [t["id"] for t in posted if t["user_id"] == bo][::-1]


def test_timeline_query_errors_are_400(feed_stack):
    ali = feed_stack.create_user()
    for params in ({"limit": 0}, {"limit": 101}, {"cursor": "garbage"}, {"limit": "x"}):
        problem(feed_stack.timeline(ali, **params), 400)


def test_a_new_tweet_reaches_every_follower_within_2_s(feed_stack):
    author = feed_stack.create_user("Author")
    followers = [feed_stack.create_user(f"F{i}") for i in range(5)]
    for follower in followers:
        feed_stack.follow(follower, author)
        assert feed_stack.timeline_ids(follower) == []  # cached (empty) before the tweet
    tweet = feed_stack.tweet(author)
    for user in (author, *followers):
        wait_until(lambda: feed_stack.timeline_ids(user) == [tweet["id"]], timeout=2)


def test_follow_brings_the_followees_newest_tweets_and_unfollow_takes_them_away(feed_stack):
    reader, author = feed_stack.create_user("Reader"), feed_stack.create_user("Author")
    tweets = [feed_stack.tweet(author, f"t{i}")["id"] for i in range(25)]
    assert feed_stack.timeline_ids(reader) == []
    feed_stack.follow(reader, author)
    wait_until(lambda: feed_stack.timeline_ids(reader) == tweets[::-1], timeout=2)
    assert feed_stack.request("DELETE", "feed_service",
                              f"/follows/{reader}/{author}").status_code == 204
    wait_until(lambda: feed_stack.timeline_ids(reader) == [], timeout=2)


def test_a_deleted_tweet_leaves_every_timeline_within_2_s(feed_stack):
    author, reader = feed_stack.create_user("Author"), feed_stack.create_user("Reader")
    feed_stack.follow(reader, author)
    keep, gone = feed_stack.tweet(author, "keep"), feed_stack.tweet(author, "gone")
    wait_until(lambda: feed_stack.timeline_ids(reader) == [gone["id"], keep["id"]], 2)
    assert feed_stack.request("DELETE", "tweet_service", f"/tweets/{gone['id']}").status_code == 204
    for user in (reader, author):
        wait_until(lambda: feed_stack.timeline_ids(user) == [keep["id"]], timeout=2)


def _insert_tweets(stack, user_id: int, count: int) -> list[int]:
    """Tweets stored straight in the tweet database (quicker than posting
    hundreds): their events are never sent, so only a rebuild shows them."""
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    with stack.engines["tweet_service"].begin() as connection:
        for i in range(count):
            connection.execute(text(
                "INSERT INTO tweets (user_id, content, created_at) VALUES (:u, :c, :t)"),
                {"u": user_id, "c": f"old {i}", "t": start + timedelta(seconds=i)})
        rows = connection.execute(text("SELECT id FROM tweets WHERE user_id = :u ORDER BY id DESC"),
                                  {"u": user_id})
        return [row.id for row in rows]


def test_at_least_800_entries_are_reachable_by_paging(feed_stack):
    reader, author = feed_stack.create_user("Reader"), feed_stack.create_user("Author")
    feed_stack.follow(reader, author)
    old = _insert_tweets(feed_stack, author, 830)
    assert feed_stack.timeline_ids(reader) == old  # rebuilt: the newest 800 cached
    new = [feed_stack.tweet(author, f"new {i}")["id"] for i in range(3)]  # fanned out
    expected = new[::-1] + old
    wait_until(lambda: feed_stack.timeline(reader, limit=3).json()["data"][0]["id"]
                        == new[-1], timeout=2)
    assert feed_stack.timeline_ids(reader, page_size=97) == expected


def test_a_flushed_cache_gives_the_same_answers(cached_stack):
    import redis

    feed_stack = cached_stack
    users = [feed_stack.create_user(f"U{i}") for i in range(4)]
    for i, user in enumerate(users):
        feed_stack.follow(user, users[(i + 1) % 4])
        feed_stack.tweet(user, f"from {user}")
    before = {u: feed_stack.timeline_ids(u) for u in users}
    assert all(len(ids) == 2 for ids in before.values())
    with redis.Redis.from_url(feed_stack.redis_url) as client:
        assert client.exists(*(f"timeline:{u}" for u in users)) == 4
        client.flushdb()
    assert {u: feed_stack.timeline_ids(u) for u in users} == before


def test_fan_out_and_read_time_merge_give_the_same_timeline(feed_stack):
    """The gunicorn feed fans out authors with at most FANOUT_MAX_FOLLOWERS
    (3 in this stack) followers and merges the others in at read time; an
    app with fan-out off merges every author. Same timelines."""
    reader = feed_stack.create_user("Reader")
    big, small = feed_stack.create_user("Big"), feed_stack.create_user("Small")
    fans = [feed_stack.create_user(f"Fan{i}") for i in range(4)]
    for fan in (reader, *fans):
        feed_stack.follow(fan, big)
    feed_stack.follow(reader, small)
    for fan in fans[:2]:
        feed_stack.follow(fan, small)
    assert feed_stack.timeline_ids(reader) == []
    posted = []
    for i in range(12):
        author = (big, small, reader, fans[0])[i % 4]
        posted.append(feed_stack.tweet(author, f"t{i}"))
    expected = [t["id"] for t in posted if t["user_id"] != fans[0]][::-1]
    wait_until(lambda: feed_stack.timeline_ids(reader) == expected, timeout=2)

    merged = feed_service.create_app(FeedSettings(
        database_url=feed_stack.db_urls["feed_service"], redis_url=feed_stack.redis_url,
        fanout_enabled=False, user_service_url=feed_stack.url("user_service"),
        tweet_service_url=feed_stack.url("tweet_service")))
    try:
        client = merged.test_client()
        for user in (reader, big, small, *fans):
            pages = [feed_stack.timeline(user, limit=5).json()]
            alone = [client.get(f"/timelines/{user}?limit=5").json]
            while pages[-1]["next_cursor"]:
                pages.append(feed_stack.timeline(user, limit=5,
                                                 cursor=pages[-1]["next_cursor"]).json())
                alone.append(client.get(f"/timelines/{user}?limit=5&"
                                        f"cursor={alone[-1]['next_cursor']}").json)
            assert pages == alone
    finally:
        merged.extensions["store"].close()
    if feed_stack.redis_url:
        import redis
        with redis.Redis.from_url(feed_stack.redis_url) as client:
            cached = [int(m) for m in client.zrevrange(f"timeline:{reader}", 0, -1)]
        # Big's tweets are not in the cache: merged in at read time.
        assert cached[:-1] == [t["id"] for t in posted if t["user_id"] in (small, reader)][::-1]


def test_a_renamed_author_is_shown_renamed_and_a_deleted_one_not_at_all(feed_stack):
    reader, author = feed_stack.create_user("Reader"), feed_stack.create_user("Old name")
    feed_stack.follow(reader, author)
    tweet = feed_stack.tweet(author, "hi")
    wait_until(lambda: feed_stack.timeline_ids(reader) == [tweet["id"]], timeout=2)
    assert feed_stack.timeline(reader).json()["data"][0]["author"]["name"] == "Old name"
    renamed = feed_stack.request("PATCH", "user_service", f"/users/{author}",
                                 json={"name": "New name", "handle": "newname"})
    assert renamed.status_code == 200
    wait_until(lambda: feed_stack.timeline(reader).json()["data"][0]["author"]
               == {"id": author, "name": "New name", "handle": "newname"}, timeout=2)
    assert feed_stack.request("DELETE", "user_service", f"/users/{author}").status_code == 204
    wait_until(lambda: feed_stack.timeline_ids(reader) == [], timeout=5)
