"""The user service: lookups, batch lookups, and writes seen by every replica."""
import pytest

from contract.api import assert_problem, assert_recent_utc_timestamp, assert_validation_error, create_user


def test_a_user(stack):
    created = create_user(stack, "Ali", handle="ali")
    assert set(created) == {"id", "name", "handle", "created_at"}
    assert_recent_utc_timestamp(created["created_at"])
    assert stack.users.get("/users/1").json == created
    assert stack.replica_get("/users/1").json() == created


def test_unknown_user_is_404(stack):
    assert_problem(stack.users.get("/users/1"), 404)


def test_batch_lookup_keeps_the_order_asked_and_lists_the_missing(stack):
    for name in ("Ali", "Bea", "Cem"):
        create_user(stack, name)
    body = stack.users.get("/users?ids=3,99,1,7").json
    assert [user["name"] for user in body["data"]] == ["Cem", "Ali"]
    assert body["missing"] == [99, 7]


def test_batch_lookup_of_100_ids(stack):
    create_user(stack)
    ids = ",".join(str(i) for i in range(1, 101))
    body = stack.users.get(f"/users?ids={ids}").json
    assert [user["id"] for user in body["data"]] == [1]
    assert body["missing"] == list(range(2, 101))


@pytest.mark.parametrize("ids", [",".join(str(i) for i in range(1, 102)), "1,,2", "a", "0", "1;2"])
def test_invalid_batch_lookup_is_400(stack, ids):
    assert_validation_error(stack.users.get(f"/users?ids={ids}"), "ids", status=400)


def _warm_both_replicas(stack, user_id: int = 1) -> dict:
    """GET the user from both replicas, so that a stale cache entry would be served."""
    here, there = stack.users.get(f"/users/{user_id}"), stack.replica_get(f"/users/{user_id}")
    assert here.status_code == there.status_code == 200
    assert stack.users.get(f"/users?ids={user_id}").status_code == 200
    return here.json


def test_patch_is_seen_by_the_next_get_on_the_other_replica(stack):
    create_user(stack, "Ali", handle="ali")
    _warm_both_replicas(stack)

    updated = stack.users.patch("/users/1", json={"name": "Alice", "handle": None})
    assert updated.status_code == 200
    assert (updated.json["name"], updated.json["handle"]) == ("Alice", None)
    assert stack.replica_get("/users/1").json() == updated.json
    assert stack.replica_get("/users?ids=1").json()["data"] == [updated.json]

    _warm_both_replicas(stack)
    again = stack.replica("PATCH", "/users/1", json={"handle": "alice"})
    assert again.status_code == 200
    assert stack.users.get("/users/1").json == again.json() == {**updated.json, "handle": "alice"}


def test_patch_of_an_unknown_user_is_404(stack):
    assert_problem(stack.users.patch("/users/1", json={"name": "x"}), 404)


def test_delete_then_get_on_the_other_replica_is_404(stack):
    create_user(stack)
    create_user(stack, "Bea")
    _warm_both_replicas(stack, 1)
    _warm_both_replicas(stack, 2)

    response = stack.users.delete("/users/1")
    assert response.status_code == 204 and response.get_data() == b""
    assert stack.replica_get("/users/1").status_code == 404
    assert stack.replica_get("/users?ids=1,2").json()["missing"] == [1]

    assert stack.replica("DELETE", "/users/2").status_code == 204
    assert_problem(stack.users.get("/users/2"), 404)
    assert_problem(stack.users.delete("/users/2"), 404)


def test_a_deleted_users_id_is_not_reused(stack):
    create_user(stack)
    assert stack.users.delete("/users/1").status_code == 204
    assert create_user(stack, "Bea")["id"] == 2


def test_lookups_still_work_when_redis_is_down(stack, closed_port_url):
    create_user(stack, "Ali")
    client = stack.app("users", redis_url=closed_port_url.replace("http", "redis")).test_client()
    assert client.get("/users/1").json["name"] == "Ali"
    assert client.get("/users?ids=1,2").json["missing"] == [2]
    assert client.patch("/users/1", json={"name": "Alice"}).status_code == 200
    assert client.get("/users/1").json["name"] == "Alice"
    assert client.post("/users", json={"name": "Bea"}).status_code == 201
    assert client.delete("/users/2").status_code == 204
    assert_problem(client.get("/users/2"), 404)
