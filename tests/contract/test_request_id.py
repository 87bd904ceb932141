"""X-Request-ID: echoed when sane, minted otherwise, forwarded between services."""
import uuid

import pytest

from contract.api import create_tweet, create_user, wait_until

SERVICES = ["users", "tweets"]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("request_id", ["abc-123", "x" * 128, "printable ~!@#$%^&*() <>"])
def test_a_valid_request_id_is_echoed(stack, service, request_id):
    response = getattr(stack, service).get(f"/{service}", headers={"X-Request-ID": request_id})
    assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("path", ["/healthz", "/users/1", "/no/such/route"])
def test_every_response_gets_a_fresh_request_id(stack, service, path):
    client = getattr(stack, service)
    first, second = client.get(path).headers["X-Request-ID"], client.get(path).headers["X-Request-ID"]
    assert first and second and first != second


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("request_id", ["x" * 129, "bad\tid", "bad\x7fid", "é-not-ascii"])
def test_an_invalid_request_id_is_replaced(stack, service, request_id):
    response = getattr(stack, service).get(f"/{service}", headers={"X-Request-ID": request_id})
    assert response.headers["X-Request-ID"] not in ("", request_id)
    assert response.headers["X-Request-ID"].isprintable()


def _user_service_saw(stack, request_id: str, path: str) -> list[dict]:
    return [entry for entry in stack.user_access_log()
            if entry["request_id"] == request_id and entry["path"] == path]


def test_request_id_is_forwarded_to_the_user_service(stack):
    create_user(stack)
    request_id = f"contract-{uuid.uuid4()}"
    response = stack.tweets.post("/tweets", json={"user_id": 1, "content": "hi"},
                                 headers={"X-Request-ID": request_id})
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == request_id
    # The author check: a batch lookup (GET /users?ids=1), see coalescing.py.
    assert wait_until(lambda: _user_service_saw(stack, request_id, "/users"))


def test_a_minted_request_id_is_forwarded_too(stack):
    create_user(stack)
    create_tweet(stack)
    response = stack.tweets.get("/tweets?expand=author")
    minted = response.headers["X-Request-ID"]
    assert wait_until(lambda: _user_service_saw(stack, minted, "/users"))
