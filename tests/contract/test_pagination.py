"""Keyset pagination: page sizes, cursors, and walks that never skip or repeat."""
import base64

import pytest

from contract.api import assert_validation_error, create_tweet, create_user

SERVICES = ["users", "tweets"]


def _fill(stack, service: str, count: int) -> None:
    """`count` users, or one user and `count` tweets."""
    if service == "users":
        for i in range(count):
            create_user(stack, f"user {i}")
    else:
        create_user(stack)
        for i in range(count):
            create_tweet(stack, 1, f"tweet {i}")


def _walk(client, url: str, between_pages=lambda: None) -> list[int]:
    """Every id of a listing, page after page; calls between_pages() after each page."""
    ids, cursor = [], None
    while True:
        separator = "&" if "?" in url else "?"
        response = client.get(url + (f"{separator}cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.get_data(as_text=True)
        assert set(response.json) == {"data", "next_cursor"}
        ids += [item["id"] for item in response.json["data"]]
        cursor = response.json["next_cursor"]
        if cursor is None:
            return ids
        between_pages()


@pytest.mark.parametrize("service", SERVICES)
def test_default_page_is_20(stack, service):
    _fill(stack, service, 21)
    first = getattr(stack, service).get(f"/{service}").json
    assert len(first["data"]) == 20
    second = getattr(stack, service).get(f"/{service}?cursor={first['next_cursor']}").json
    assert len(second["data"]) == 1 and second["next_cursor"] is None


@pytest.mark.parametrize("service", SERVICES)
def test_limit_from_1_to_100(stack, service):
    _fill(stack, service, 3)
    client = getattr(stack, service)
    assert len(client.get(f"/{service}?limit=1").json["data"]) == 1
    page = client.get(f"/{service}?limit=100").json
    assert len(page["data"]) == 3 and page["next_cursor"] is None


@pytest.mark.parametrize("service", SERVICES)
def test_an_empty_listing(stack, service):
    assert getattr(stack, service).get(f"/{service}").json == {"data": [], "next_cursor": None}


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5", ""])
def test_invalid_limit_is_400(stack, service, limit):
    assert_validation_error(getattr(stack, service).get(f"/{service}?limit={limit}"), "limit", status=400)


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("cursor", ["", "garbage!", "bm90LWEtY3Vyc29y", _b64("v1:0"), _b64("v1:-5"),
                                    _b64("v1:99999999999999999999"), "x" * 65])
def test_invalid_cursor_is_400(stack, service, cursor):
    assert_validation_error(getattr(stack, service).get(f"/{service}?cursor={cursor}"), "cursor", status=400)


def test_walking_users_oldest_first_while_users_are_created(stack):
    _fill(stack, "users", 5)
    walked = _walk(stack.users, "/users?limit=2", between_pages=lambda: create_user(stack, "newcomer"))
    # Users created during the walk come after the cursor: they are seen too.
    assert walked == list(range(1, stack.user_count() + 1))


def test_walking_tweets_newest_first_while_tweets_are_posted(stack):
    _fill(stack, "tweets", 7)
    walked = _walk(stack.tweets, "/tweets?limit=3", between_pages=lambda: create_tweet(stack, 1, "new"))
    # Tweets posted during the walk are newer than the first page: not seen, nothing shifts.
    assert walked == list(range(7, 0, -1))
    assert stack.tweet_count() == 7 + 2


def test_tweets_of_one_user(stack):
    create_user(stack, "Ali")
    create_user(stack, "Bea")
    for i in range(6):
        create_tweet(stack, 1 + i % 2, f"tweet {i}")
    assert _walk(stack.tweets, "/tweets?user_id=1&limit=2") == [5, 3, 1]
    assert _walk(stack.tweets, "/tweets?user_id=2") == [6, 4, 2]
    assert _walk(stack.tweets, "/tweets?user_id=3") == []
    assert _walk(stack.tweets, "/tweets") == [6, 5, 4, 3, 2, 1]


@pytest.mark.parametrize("user_id", ["0", "x", "-1", "99999999999999999999"])
def test_invalid_user_id_filter_is_400(stack, user_id):
    assert_validation_error(stack.tweets.get(f"/tweets?user_id={user_id}"), "user_id", status=400)
