"""/tweets: post, read one, list (a user's or everyone's, newest first), delete.

Each view parses its input, makes one store call and returns the declared
output; errors are problems (common/problems.py) the store or the parsing raised.
"""
from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app, url_for

from common import idempotency
from common.inbox import UserDeleted, event_batch, events_blueprint

from .schemas import TweetCreate, TweetList, TweetOut, TweetsQuery
from .store import TweetStore

bp = APIBlueprint("tweets", __name__, tag="Tweets")


def _store() -> TweetStore:
    return current_app.extensions["store"]


def _location(tweet_id: int) -> str:
    return url_for("tweets.get_tweet", tweet_id=tweet_id)


@bp.post("/tweets")
@bp.input(TweetCreate, arg_name="body")
@bp.output(TweetOut, status_code=201, description="The tweet, stored")
@bp.doc(responses={409: "The Idempotency-Key is in use",
                   422: "Invalid, or the user does not exist",
                   503: "The user service is unavailable"})
def create_tweet(body: TweetCreate):
    return idempotency.created(_store().create(body, idempotency.requested()), _location)


@bp.get("/tweets/<id:tweet_id>")
@bp.output(TweetOut)
@bp.doc(responses={404: "No such tweet"})
def get_tweet(tweet_id: int):
    return _store().get(tweet_id)


@bp.get("/tweets")
@bp.input(TweetsQuery, location="query", arg_name="query")
@bp.output(TweetList, description="A page of tweets, newest first or, with `ids`, a batch lookup")
@bp.doc(responses={503: "The user service is unavailable (with `expand=author`)"})
def list_tweets(query: TweetsQuery):
    return _store().page(query)


# Internal: the user service's outbox delivers user.deleted here (common.inbox).
events = events_blueprint(event_batch("TweetEvents", UserDeleted),
                          lambda events: _store().apply_events(events))


@bp.delete("/tweets/<id:tweet_id>")
@bp.output({}, status_code=204, description="Deleted")
@bp.doc(responses={404: "No such tweet"})
def delete_tweet(tweet_id: int):
    _store().delete(tweet_id)
    return ""
