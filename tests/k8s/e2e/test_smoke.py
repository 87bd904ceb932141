"""The contract's main paths, through the one HTTP entry point."""
from __future__ import annotations

import uuid

from conftest import call


def _handle():
    return "e2e_" + uuid.uuid4().hex[:8]


def test_create_and_read_a_user():
    handle = _handle()
    r = call("POST", "/users", {"name": "E2E", "handle": handle})
    assert r.status == 201, r.raw
    user = r.json()
    assert user["handle"] == handle and user["name"] == "E2E"
    assert r.headers["Location"].endswith(f"/users/{user['id']}")
    assert r.headers["X-Request-ID"]
    got = call("GET", f"/users/{user['id']}")
    assert got.status == 200 and got.json() == user


def test_request_id_is_echoed():
    r = call("GET", "/users?limit=1", headers={"X-Request-ID": "e2e-req-123"})
    assert r.status == 200 and r.headers["X-Request-ID"] == "e2e-req-123"


def test_tweet_flow_across_both_services():
    user = call("POST", "/users", {"name": "Author", "handle": _handle()}).json()
    r = call("POST", "/tweets", {"user_id": user["id"], "content": "Hello from the Ingress"})
    assert r.status == 201, r.raw
    tweet = r.json()
    assert tweet["user_id"] == user["id"]
    page = call("GET", f"/tweets?user_id={user['id']}&expand=author")
    assert page.status == 200
    (item,) = page.json()["data"]
    assert item["id"] == tweet["id"]
    assert item["author"]["id"] == user["id"] and item["author"]["handle"] == user["handle"]
    assert call("DELETE", f"/tweets/{tweet['id']}").status == 204
    assert call("GET", f"/tweets/{tweet['id']}").status == 404


def test_unknown_author_is_422_problem():
    r = call("POST", "/tweets", {"user_id": 2_000_000_000, "content": "nobody"})
    assert r.status == 422, r.raw
    assert r.headers["Content-Type"].startswith("application/problem+json")


def test_missing_user_is_404_problem():
    r = call("GET", "/users/2000000000")
    assert r.status == 404
    assert r.headers["Content-Type"].startswith("application/problem+json")


def test_update_is_visible_from_every_replica():
    user = call("POST", "/users", {"name": "Before", "handle": _handle()}).json()
    assert call("PATCH", f"/users/{user['id']}", {"name": "After"}).status == 200
    for _ in range(10):  # several requests: several replicas behind the Service
        assert call("GET", f"/users/{user['id']}").json()["name"] == "After"
    assert call("DELETE", f"/users/{user['id']}").status == 204
    for _ in range(10):
        assert call("GET", f"/users/{user['id']}").status == 404


def test_idempotency_key_replays():
    key = str(uuid.uuid4())
    body = {"name": "Idem", "handle": _handle()}
    a = call("POST", "/users", body, headers={"Idempotency-Key": key})
    b = call("POST", "/users", body, headers={"Idempotency-Key": key})
    assert a.status == b.status == 201 and a.json() == b.json()


def test_health_routes_are_not_exposed_on_the_ingress_prefixes():
    # Only /users and /tweets are routed; anything else is the controller's 404.
    assert call("GET", "/metrics").status == 404
