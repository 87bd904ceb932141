"""Contract v2, tweet service: the batch lookup the feed hydrates timelines
with (`GET /tweets?ids=`), and the `user_ids` filter it merges with."""
from __future__ import annotations

from contract.api import assert_problem, assert_validation_error, create_tweet, create_user


def test_batch_lookup_answers_in_the_order_asked_and_names_the_missing(stack):
    create_user(stack, "Ali", handle="ali")
    tweets = [create_tweet(stack, 1, f"t{i}") for i in range(3)]
    response = stack.tweets.get(f"/tweets?ids={tweets[2]['id']},99,{tweets[0]['id']},"
                                f"{tweets[2]['id']}")
    assert response.status_code == 200
    assert response.json == {"data": [tweets[2], tweets[0]], "missing": [99]}

    expanded = stack.tweets.get(f"/tweets?ids={tweets[1]['id']}&expand=author").json
    assert expanded["data"] == [{**tweets[1], "author": {"id": 1, "name": "Ali", "handle": "ali"}}]
    assert stack.tweets.delete(f"/tweets/{tweets[1]['id']}").status_code == 204
    assert stack.tweets.get(f"/tweets?ids={tweets[1]['id']}").json == {
        "data": [], "missing": [tweets[1]["id"]]}


def test_batch_lookup_takes_1_to_100_ids(stack):
    create_user(stack)
    tweet = create_tweet(stack)
    assert stack.tweets.get("/tweets?ids=" + ",".join(map(str, range(1, 101)))).status_code == 200
    # The page parameters do not apply to it.
    assert stack.tweets.get(f"/tweets?ids={tweet['id']}&user_id=2&limit=1").json == {
        "data": [tweet], "missing": []}
    for query in ("ids=" + ",".join(map(str, range(1, 102))), "ids=", "ids=1,,2", "ids=0",
                  "ids=x", "ids=01", "ids=1000000000000000000"):
        assert_problem(stack.tweets.get(f"/tweets?{query}"), 400)


def test_user_ids_filters_a_page_by_several_authors(stack):
    for name in ("A", "B", "C"):
        create_user(stack, name)
    posted = [create_tweet(stack, user, f"by {user}") for user in (1, 2, 3, 1, 2, 3)]
    first = stack.tweets.get("/tweets?user_ids=1,3&limit=3").json
    expected = [t for t in posted if t["user_id"] in (1, 3)][::-1]
    assert first["data"] == expected[:3]
    rest = stack.tweets.get(f"/tweets?user_ids=1,3&limit=3&cursor={first['next_cursor']}").json
    assert rest == {"data": expected[3:], "next_cursor": None}
    both = stack.tweets.get("/tweets?user_ids=1,2&user_id=2").json["data"]
    assert both == [t for t in posted if t["user_id"] == 2][::-1]
    assert_validation_error(stack.tweets.get("/tweets?user_ids=1,x"), "user_ids", 400)
