"""The Redis cache never outlives a write, even when a lookup races it."""
from __future__ import annotations

from contract.api import create_user
from user_service.schemas import UserOut


def test_a_lookup_that_read_before_a_write_cannot_cache_the_old_user(postgres_stack):
    stack = postgres_stack
    user = create_user(stack)
    before = UserOut.model_validate(stack.users.get(f"/users/{user['id']}").json)  # what a slow lookup read
    cache = stack.user_app.extensions["store"].cache
    _, lookup = cache.get_many([user["id"]])  # ... when it began

    assert stack.users.patch(f"/users/{user['id']}", json={"name": "Renamed"}).status_code == 200
    # The slow lookup now writes back what it read before the PATCH committed.
    cache.put_many({user["id"]: before}, [], lookup)

    assert stack.replica_get(f"/users/{user['id']}").json()["name"] == "Renamed"
    assert stack.users.get(f"/users/{user['id']}").json["name"] == "Renamed"


def test_a_lookup_that_read_before_a_delete_cannot_resurrect_the_user(postgres_stack):
    stack = postgres_stack
    user = create_user(stack)
    before = UserOut.model_validate(stack.users.get(f"/users/{user['id']}").json)
    cache = stack.user_app.extensions["store"].cache
    _, lookup = cache.get_many([user["id"]])

    assert stack.users.delete(f"/users/{user['id']}").status_code == 204
    cache.put_many({user["id"]: before}, [], lookup)

    assert stack.replica_get(f"/users/{user['id']}").status_code == 404
