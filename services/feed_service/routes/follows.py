"""/follows: follow, check, unfollow, and list one user's follows or followers."""
from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app, url_for

from common.pagination import page
from common.problems import Problem

from ..schemas import FollowOut, FollowPage, FollowsQuery

bp = APIBlueprint("follows", __name__, tag="Follows")
PAIR = "/follows/<id:follower_id>/<id:followee_id>"


def _store():
    return current_app.extensions["store"]


@bp.put(PAIR)
@bp.output(FollowOut, status_code=201, description="Now following")
@bp.doc(responses={200: "Already following (the existing follow)",
                   404: "Either user does not exist",
                   422: "A user cannot follow themselves",
                   503: "The user service (or the timeline cache) is unavailable; nothing stored"})
def follow(follower_id: int, followee_id: int):
    follow, created = _store().follow(follower_id, followee_id)
    if not created:
        return follow, 200
    location = url_for("follows.get_follow", follower_id=follower_id, followee_id=followee_id)
    return follow, 201, {"Location": location}


@bp.get(PAIR)
@bp.output(FollowOut, description="The follow")
@bp.doc(responses={404: "Not following"})
def get_follow(follower_id: int, followee_id: int):
    follow = _store().get_follow(follower_id, followee_id)
    if follow is None:
        raise Problem(404, f"User {follower_id} does not follow user {followee_id}.")
    return follow


@bp.delete(PAIR)
@bp.output({}, status_code=204, description="Not following any more (whether or not it was)")
@bp.doc(responses={503: "The timeline cache is unavailable; nothing changed"})
def unfollow(follower_id: int, followee_id: int):
    _store().unfollow(follower_id, followee_id)
    return ""


@bp.get("/follows")
@bp.input(FollowsQuery, location="query", arg_name="query")
@bp.output(FollowPage, description="A page of follows, newest first")
def list_follows(query: FollowsQuery):
    rows = _store().follows(follower_id=query.follower_id, followee_id=query.followee_id,
                            after_id=query.after_id, count=query.limit + 1)
    follows, next_cursor = page(rows, query.limit)
    return {"data": [row._asdict() for row in follows], "next_cursor": next_cursor}
