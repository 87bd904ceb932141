"""Idempotency-Key on POST: replay, mismatch, in-flight duplicates, per service."""
import pytest
from sqlalchemy import text

from contract.api import assert_problem, create_user

KEY = {"Idempotency-Key": "8e03978e-40d5-43e8-bc93-6894a57f9324"}


def _post(stack, service: str, body: dict, headers=KEY):
    return getattr(stack, service).post(f"/{service}", json=body, headers=headers)


def _row_count(stack, service: str) -> int:
    return stack.user_count() if service == "users" else stack.tweet_count()


@pytest.fixture
def post_body(stack):
    """A POST body for either service (tweets need user 1)."""
    create_user(stack)
    return {"users": {"name": "Bea", "handle": "bea"}, "tweets": {"user_id": 1, "content": "hi"}}


@pytest.mark.parametrize("service", ["users", "tweets"])
def test_same_key_and_body_replays_the_first_response(stack, post_body, service):
    rows_before = _row_count(stack, service)
    first = _post(stack, service, post_body[service])
    replay = _post(stack, service, post_body[service])
    assert first.status_code == replay.status_code == 201
    assert replay.json == first.json
    assert replay.headers["Location"] == first.headers["Location"]
    assert _row_count(stack, service) == rows_before + 1


@pytest.mark.parametrize("service", ["users", "tweets"])
def test_an_invalid_request_gets_the_same_answer_again(stack, post_body, service):
    invalid = {"users": {"name": ""}, "tweets": {"user_id": 1, "content": ""}}[service]
    first = _post(stack, service, invalid)
    assert_problem(first, 422)
    assert _post(stack, service, invalid).json == first.json


@pytest.mark.parametrize("service", ["users", "tweets"])
def test_same_key_with_another_body_is_422(stack, post_body, service):
    rows_before = _row_count(stack, service)
    assert _post(stack, service, post_body[service]).status_code == 201
    other = {"users": {"name": "Cem"}, "tweets": {"user_id": 1, "content": "bye"}}[service]
    assert_problem(_post(stack, service, other), 422)
    assert _row_count(stack, service) == rows_before + 1


@pytest.mark.parametrize("service", ["users", "tweets"])
def test_repeat_while_the_first_is_in_flight_is_409(postgres_stack, service):
    # PostgreSQL only: SQLite serialises writers, so there a duplicate waits
    # for the first request and gets its replay instead.
    stack = postgres_stack
    create_user(stack)
    body = {"users": {"name": "Bea"}, "tweets": {"user_id": 1, "content": "hi"}}[service]
    rows = _row_count(stack, service)
    engine = stack.user_db() if service == "users" else stack.tweet_db()
    # A request in flight: its claim inserted, its transaction not committed.
    with engine.connect() as in_flight:
        in_flight.execute(text(
            "INSERT INTO idempotency_keys (key, fingerprint, created_at) "
            "VALUES (:key, 'in-flight', CURRENT_TIMESTAMP)"), {"key": KEY["Idempotency-Key"]})
        assert_problem(_post(stack, service, body), 409)
        in_flight.rollback()  # it died: the database forgets its claim
    assert _row_count(stack, service) == rows
    assert _post(stack, service, body).status_code == 201
    assert _row_count(stack, service) == rows + 1


def test_keys_belong_to_one_service(stack, post_body):
    assert _post(stack, "users", post_body["users"]).status_code == 201
    tweet = _post(stack, "tweets", post_body["tweets"])
    assert tweet.status_code == 201
    assert tweet.json["content"] == "hi"


def test_without_a_key_each_post_creates(stack):
    create_user(stack)
    create_user(stack)
    assert stack.user_count() == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "with space"])
def test_an_invalid_key_is_400(stack, key):
    assert_problem(_post(stack, "users", {"name": "Ali"}, {"Idempotency-Key": key}), 400)
    assert stack.user_count() == 0
