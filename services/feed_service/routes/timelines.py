"""/timelines: a user's home timeline."""
from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app

from common.jsonio import json_response
from common.pagination import PageQuery, encode_cursor

from ..schemas import TimelinePage

bp = APIBlueprint("timelines", __name__, tag="Timelines")


@bp.get("/timelines/<id:user_id>")
@bp.input(PageQuery, location="query", arg_name="query")
@bp.output(TimelinePage, description="The user's and their followees' tweets, newest first")
@bp.doc(responses={404: "No such user",
                   503: "The user or tweet service is unavailable"})
def get_timeline(user_id: int, query: PageQuery):
    store = current_app.extensions["store"]
    tweets = store.timeline(user_id, query.after_id, query.limit + 1)
    next_cursor = None
    if len(tweets) > query.limit:
        tweets = tweets[:query.limit]
        next_cursor = encode_cursor(tweets[-1]["id"])
    # Tweets come from the tweet service already shaped: sent as they are.
    return json_response({"data": tweets, "next_cursor": next_cursor})
