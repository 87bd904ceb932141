"""Two gunicorn replicas of the user service on one database and one Redis,
and the tweet service's client in front of one of them: a write through one
replica is what every reader sees next, whichever replica it asks."""
from __future__ import annotations

import requests


def _json(method: str, url: str, **kwargs) -> requests.Response:
    return requests.request(method, url, timeout=10, **kwargs)


def test_writes_through_one_replica_are_read_through_the_other(postgres_stack, second_replica):
    first, second = postgres_stack.user_process.url, second_replica.url
    tweets = postgres_stack.tweets  # its client calls the first replica
    user = _json("POST", f"{first}/users", json={"name": "Ali", "handle": "ali"}).json()
    assert tweets.post("/tweets", json={"user_id": user["id"], "content": "hi"}).status_code == 201
    for replica in (first, second, first, second):  # warm every cache path
        assert _json("GET", f"{replica}/users/{user['id']}").json()["name"] == "Ali"

    renamed = _json("PATCH", f"{second}/users/{user['id']}", json={"name": "Ali B."})
    assert renamed.status_code == 200
    assert _json("GET", f"{first}/users/{user['id']}").json()["name"] == "Ali B."
    author = tweets.get("/tweets?expand=author").json["data"][0]["author"]
    assert author == {"id": user["id"], "name": "Ali B.", "handle": "ali"}

    assert _json("DELETE", f"{second}/users/{user['id']}").status_code == 204
    assert _json("GET", f"{first}/users/{user['id']}").status_code == 404
    assert _json("GET", f"{first}/users?ids={user['id']}").json()["missing"] == [user["id"]]
    refused = tweets.post("/tweets", json={"user_id": user["id"], "content": "still here?"})
    assert refused.status_code == 422
    assert refused.json["type"] == "urn:chirp:problem:unknown-user"
