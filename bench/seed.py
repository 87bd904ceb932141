"""The seed baseline: Chirp's first, naive design, kept only to be measured.

Two tiny Flask apps on Flask's development server (threaded), state in
in-memory dicts, and the tweet app asking the user app whether the author
exists over plain HTTP with `requests.get` (a new connection per call, as
the seed did). Listing a user's tweets scans the tweets newest first until it has a
page, as the seed did; `expand=author` asks the user app once per distinct author.

    python bench/seed.py users  PORT [N_USERS]
    python bench/seed.py tweets PORT USER_APP_URL [N_TWEETS N_TWEETERS]

N_USERS users and N_TWEETS tweets (spread over users 1..N_TWEETERS) are made
at start-up so that every system in the benchmark serves the same data.
"""
from __future__ import annotations

import itertools
import logging
import sys
import threading
from datetime import datetime, timezone

import requests
from flask import Flask, jsonify, request


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def user_app(n_users: int) -> Flask:
    app = Flask("seed_users")
    users: dict[int, dict] = {}
    ids = itertools.count(1)
    lock = threading.Lock()
    for _ in range(n_users):
        i = next(ids)
        users[i] = {"id": i, "name": f"User {i}", "handle": f"user{i}", "created_at": now()}

    @app.post("/users")
    def create_user():
        body = request.get_json()
        with lock:
            i = next(ids)
        users[i] = {"id": i, "name": body["name"], "handle": body.get("handle"), "created_at": now()}
        return jsonify(users[i]), 201

    @app.get("/users/<int:user_id>")
    def get_user(user_id):
        user = users.get(user_id)
        if user is None:
            return jsonify({"detail": "no such user"}), 404
        return jsonify(user)

    @app.delete("/users/<int:user_id>")
    def delete_user(user_id):
        users.pop(user_id, None)
        return "", 204

    return app


def tweet_app(user_url: str, n_tweets: int, n_tweeters: int) -> Flask:
    app = Flask("seed_tweets")
    tweets: dict[int, dict] = {}
    ids = itertools.count(1)
    lock = threading.Lock()
    for n in range(n_tweets):
        i = next(ids)
        tweets[i] = {"id": i, "user_id": 1 + n % max(n_tweeters, 1), "content": f"tweet {i}",
                     "created_at": now()}

    def get_user(user_id):
        response = requests.get(f"{user_url}/users/{user_id}", timeout=5)
        return response.json() if response.status_code == 200 else None

    @app.post("/tweets")
    def create_tweet():
        body = request.get_json()
        if get_user(body["user_id"]) is None:
            return jsonify({"detail": "no such user"}), 422
        with lock:
            i = next(ids)
        tweets[i] = {"id": i, "user_id": body["user_id"], "content": body["content"],
                     "created_at": now()}
        return jsonify(tweets[i]), 201

    @app.get("/tweets")
    def list_tweets():
        user_id = request.args.get("user_id", type=int)
        newest_first = reversed(list(tweets.values()))  # ids grow, dicts keep insertion order
        found = (t for t in newest_first if user_id is None or t["user_id"] == user_id)
        page = [dict(t) for t in itertools.islice(found, 20)]
        if request.args.get("expand") == "author":
            authors = {i: get_user(i) for i in {t["user_id"] for t in page}}
            for t in page:
                t["author"] = authors[t["user_id"]]
        return jsonify({"data": page})

    return app


if __name__ == "__main__":
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on stderr
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "users":
        app = user_app(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    else:
        args = sys.argv[3:]
        app = tweet_app(args[0], int(args[1]) if len(args) > 1 else 0, int(args[2]) if len(args) > 2 else 1)
    app.run(host="127.0.0.1", port=port, threaded=True)
