"""The framework ceiling: bare Flask views returning constant JSON, run under
Chirp's gunicorn settings (bench/ceiling.conf.py). No database, no cache,
no validation, no metrics: what Chirp's stack could at most do per request.
Each route the benchmark hits answers with a body shaped like Chirp's."""
from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)

USER = {"id": 1, "name": "User 1", "handle": "user1", "created_at": "2026-01-01T00:00:00Z"}
TWEET = {"id": 1, "user_id": 1, "content": "hello", "created_at": "2026-01-01T00:00:00Z"}
PAGE = {"data": [dict(TWEET, id=i) for i in range(20, 0, -1)], "next_cursor": "djE6MQ"}
EXPANDED = {"data": [dict(TWEET, id=i, author=USER) for i in range(20, 0, -1)], "next_cursor": "djE6MQ"}


@app.get("/users/<int:user_id>")
def get_user(user_id):
    return jsonify(USER)


@app.post("/tweets")
def create_tweet():
    request.get_json()
    return jsonify(TWEET), 201


@app.get("/tweets")
def list_tweets():
    return jsonify(EXPANDED if request.args.get("expand") == "author" else PAGE)


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
