"""/tweets: post, read one, list (a user's or everyone's, newest first), delete."""
from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app, url_for
from sqlalchemy import select

from common.db import execute, get_or_404
from common.jsonio import json_response
from common.idempotency import idempotent_post
from common.pagination import page
from common.problems import DependencyUnavailable, Problem

from . import events
from .models import IdempotencyKey, Tweet
from .schemas import TweetBatch, TweetCreate, TweetList, TweetOut, TweetPage, TweetsQuery
from .user_client import UserServiceUnavailable

bp = APIBlueprint("tweets", __name__, tag="Tweets")


def _users():
    return current_app.extensions["user_client"]


def _user_service_down() -> DependencyUnavailable:
    return DependencyUnavailable("The user service is unavailable; nothing was stored.")


def _unknown_user(user_id: int) -> Problem:
    return Problem(422, f"User {user_id} does not exist.", type="urn:chirp:problem:unknown-user",
                   errors=[{"field": "user_id", "message": "no such user"}])


def _body(tweet: Tweet | dict) -> dict:
    # Built here rather than by @bp.output, which would add `"author": null`
    # to a tweet that was not asked to expand it.
    return TweetOut.model_validate(tweet).model_dump(mode="json", exclude_unset=True)


@bp.post("/tweets")
@idempotent_post(IdempotencyKey)
@bp.input(TweetCreate, arg_name="body")
@bp.output(TweetOut, status_code=201, description="The tweet, stored")
@bp.doc(responses={409: "The Idempotency-Key is in use",
                   422: "Invalid, or the user does not exist",
                   503: "The user service is unavailable"})
def create_tweet(body: TweetCreate):
    try:
        exists = _users().user_exists(body.user_id)
    except UserServiceUnavailable:
        raise _user_service_down() from None
    if not exists:
        raise _unknown_user(body.user_id)
    tweet = events.store_tweet(body.user_id, body.content)
    if tweet is None:
        raise _unknown_user(body.user_id)
    return json_response(_body(tweet), 201,
                         {"Location": url_for("tweets.get_tweet", tweet_id=tweet["id"])})


@bp.get("/tweets/<id:tweet_id>")
@bp.output(TweetOut)
def get_tweet(tweet_id: int):
    return json_response(_body(get_or_404(Tweet, tweet_id)))


@bp.get("/tweets")
@bp.input(TweetsQuery, location="query", arg_name="query")
@bp.output(TweetList, description="A page of tweets, newest first or, with `ids`, a batch lookup")
@bp.doc(responses={503: "The user service is unavailable (with `expand=author`)"})
def list_tweets(query: TweetsQuery):
    if query.ids is not None:
        return _batch(query.split(query.ids), query.expand)
    # Rows, in one autocommit statement: a page is read and sent, never
    # changed. As ORM entities in a session, released with a ROLLBACK, it
    # cost 920 µs of CPU against 630 (bench/README.md).
    statement = select(Tweet.__table__).order_by(Tweet.id.desc()).limit(query.limit + 1)
    if query.user_id is not None:
        statement = statement.where(Tweet.user_id == query.user_id)
    if query.user_ids is not None:
        statement = statement.where(Tweet.user_id.in_(query.split(query.user_ids)))
    if query.after_id:
        statement = statement.where(Tweet.id < query.after_id)
    tweets, next_cursor = page(execute(statement), query.limit)
    data = _with_authors([row._asdict() for row in tweets], query.expand)
    # One validation of the page rather than one per tweet. exclude_unset:
    # `author` appears only when it was asked for (then null for a user that
    # no longer exists).
    body = TweetPage.model_validate({"data": data, "next_cursor": next_cursor})
    return json_response(body.model_dump(mode="json", exclude_unset=True))


def _batch(ids: list[int], expand: str | None):
    rows = {row.id: row._asdict() for row in execute(
        select(Tweet.__table__).where(Tweet.id.in_(ids)))}
    data = _with_authors([rows[i] for i in ids if i in rows], expand)
    body = TweetBatch.model_validate({"data": data, "missing": [i for i in ids if i not in rows]})
    return json_response(body.model_dump(mode="json", exclude_unset=True))


def _with_authors(tweets: list[dict], expand: str | None) -> list[dict]:
    """With `expand=author`: each tweet with its author, from one batch call."""
    if expand == "author":
        try:
            authors = _users().get_users(sorted({t["user_id"] for t in tweets}))
        except UserServiceUnavailable:
            raise _user_service_down() from None
        for tweet in tweets:
            tweet["author"] = authors.get(tweet["user_id"])
    return tweets


@bp.delete("/tweets/<id:tweet_id>")
@bp.output({}, status_code=204, description="Deleted")
def delete_tweet(tweet_id: int):
    events.delete_tweet(tweet_id)
    return ""
