"""The tweet service: tweets, authors from the user service, and its outages."""
import time

from contract.api import assert_problem, assert_recent_utc_timestamp, create_tweet, create_user, wait_until


def test_a_tweet(stack):
    create_user(stack)
    created = create_tweet(stack, 1, "Hello 👋")
    assert set(created) == {"id", "user_id", "content", "created_at"}
    assert_recent_utc_timestamp(created["created_at"])
    assert stack.tweets.get("/tweets/1").json == created


def test_unknown_tweet_is_404(stack):
    assert_problem(stack.tweets.get("/tweets/1"), 404)


def test_delete_tweet_is_204_then_404(stack):
    create_user(stack)
    create_tweet(stack)
    response = stack.tweets.delete("/tweets/1")
    assert response.status_code == 204 and response.get_data() == b""
    assert_problem(stack.tweets.get("/tweets/1"), 404)
    assert_problem(stack.tweets.delete("/tweets/1"), 404)
    assert stack.tweet_count() == 0


def _batch_lookups(stack) -> int:
    """How many batch lookups the gunicorn user service has served so far,
    once its access log has caught up (written at most every 0.1 s)."""
    def count():
        return sum(1 for entry in stack.user_access_log()
                   if entry["method"] == "GET" and entry["path"] == "/users" and entry["query"].startswith("ids="))
    before = count()
    while True:
        time.sleep(0.25)
        if (after := count()) == before:
            return after
        before = after


def test_expand_author_embeds_authors_with_one_batch_call_per_page(stack):
    create_user(stack, "Ali", handle="ali")
    create_user(stack, "Bea")
    for i in range(5):
        create_tweet(stack, 1 + i % 2, f"tweet {i}")
    calls = _batch_lookups(stack)

    first = stack.tweets.get("/tweets?expand=author&limit=3").json
    authors = {1: {"id": 1, "name": "Ali", "handle": "ali"}, 2: {"id": 2, "name": "Bea", "handle": None}}
    assert [(t["id"], t["author"]) for t in first["data"]] == [(5, authors[1]), (4, authors[2]), (3, authors[1])]
    second = stack.tweets.get(f"/tweets?expand=author&limit=3&cursor={first['next_cursor']}").json
    assert [(t["id"], t["author"]) for t in second["data"]] == [(2, authors[2]), (1, authors[1])]

    wait_until(lambda: _batch_lookups(stack) >= calls + 2)
    assert _batch_lookups(stack) == calls + 2


def test_without_expand_there_is_no_author(stack):
    create_user(stack)
    create_tweet(stack)
    assert "author" not in stack.tweets.get("/tweets").json["data"][0]


def test_the_author_of_a_deleted_user_is_null(stack):
    create_user(stack)
    create_tweet(stack)
    assert stack.users.delete("/users/1").status_code == 204
    assert stack.tweets.get("/tweets?expand=author").json["data"][0]["author"] is None


def test_user_service_down_is_503_with_retry_after_and_nothing_stored(stack, closed_port_url):
    client = stack.app("tweets", user_service_url=closed_port_url).test_client()
    for _ in range(2):  # the same before and after the circuit opens
        response = client.post("/tweets", json={"user_id": 1, "content": "hi"})
        assert_problem(response, 503)
        assert int(response.headers["Retry-After"]) > 0
    assert stack.tweet_count() == 0


def test_expand_author_with_the_user_service_down_is_503(stack, closed_port_url):
    create_user(stack)
    create_tweet(stack)
    client = stack.app("tweets", user_service_url=closed_port_url).test_client()
    response = client.get("/tweets?expand=author")
    assert_problem(response, 503)
    assert "Retry-After" in response.headers
    assert client.get("/tweets").status_code == 200  # without authors, no need for the user service
