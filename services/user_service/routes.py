"""/users: create, look up (one, a batch, or a page), update, delete."""
from __future__ import annotations

import orjson
from apiflask import APIBlueprint
from flask import Response, current_app, url_for
from sqlalchemy import Row, select
from sqlalchemy.exc import IntegrityError

from common.db import execute, get_or_404, get_session
from common.idempotency import idempotent_post
from common.outbox import emit
from common.pagination import page
from common.problems import Problem

from .models import IdempotencyKey, User
from .schemas import UserCreate, UserList, UserOut, UsersQuery, UserUpdate

bp = APIBlueprint("users", __name__, tag="Users")


def _cache():
    return current_app.extensions["user_cache"]


def _json(user: Row) -> bytes:
    return orjson.dumps(UserOut.model_validate(user).model_dump(mode="json"))


def _not_found(user_id: int) -> Problem:
    return Problem(404, f"User {user_id} does not exist.")


def _handle_taken(handle: str) -> Problem:
    return Problem(409, f"The handle {handle!r} is taken.", type="urn:chirp:problem:handle-taken")


def _flush_or_conflict(session, handle: str | None) -> None:
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise _handle_taken(handle or "") from None


def lookup(user_ids: list[int]) -> dict[int, bytes]:
    """JSON of the users that exist among `user_ids`: the cache first (this
    process's copy, then Redis), then one query for the rest, which then
    warms the cache (misses included)."""
    cache = _cache()
    pending = current_app.extensions["pending_invalidations"].ids()
    cached, generation = cache.get_many([i for i in user_ids if i not in pending])
    wanted = [i for i in user_ids if i not in cached]
    fetched: dict[int, bytes] = {}
    if wanted:
        users = execute(select(User.__table__).where(User.id.in_(wanted)))
        fetched = {user.id: _json(user) for user in users}
        cache.put_many({i: body for i, body in fetched.items() if i not in pending},
                       [i for i in wanted if i not in fetched and i not in pending], generation)
    found = {**cached, **fetched}
    return {i: found[i] for i in user_ids if found.get(i)}


def _invalidate(session, user_id: int) -> None:
    """Committed with the write, applied to the cache right after the commit
    (common.outbox): every replica then reads the user fresh."""
    emit(session, "cache", "user.changed", {"user_id": user_id})


@bp.post("/users")
@idempotent_post(IdempotencyKey)
@bp.input(UserCreate, arg_name="body")
@bp.output(UserOut, status_code=201, description="The user, created")
@bp.doc(responses={409: "The handle is taken, or the Idempotency-Key is in use"})
def create_user(body: UserCreate):
    session = get_session()
    user = User(name=body.name, handle=body.handle)
    session.add(user)
    _flush_or_conflict(session, body.handle)
    return user, 201, {"Location": url_for("users.get_user", user_id=user.id)}


@bp.get("/users/<id:user_id>")
@bp.output(UserOut)
def get_user(user_id: int):
    body = lookup([user_id]).get(user_id)
    if body is None:
        raise _not_found(user_id)
    return Response(body, mimetype="application/json")


@bp.get("/users")
@bp.input(UsersQuery, location="query", arg_name="query")
@bp.output(UserList, description="A page of users or, with `ids`, a batch lookup")
def list_users(query: UsersQuery):
    if query.ids:
        ids = query.id_list
        found = lookup(ids)
        body = b'{"data":[%s],"missing":%s}' % (
            b",".join(found[i] for i in ids if i in found),
            orjson.dumps([i for i in ids if i not in found]))
        return Response(body, mimetype="application/json")
    statement = select(User.__table__).order_by(User.id).limit(query.limit + 1)
    if query.after_id:
        statement = statement.where(User.id > query.after_id)
    users, next_cursor = page(execute(statement), query.limit)
    return {"data": [user._asdict() for user in users], "next_cursor": next_cursor}


@bp.patch("/users/<id:user_id>")
@bp.input(UserUpdate, arg_name="body")
@bp.output(UserOut, description="The user, updated")
@bp.doc(responses={409: "The handle is taken"})
def update_user(user_id: int, body: UserUpdate):
    session = get_session()
    user = get_or_404(User, user_id, with_for_update=True)
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(user, field, value)
    _flush_or_conflict(session, body.handle)
    _invalidate(session, user_id)
    session.commit()
    return user


@bp.delete("/users/<id:user_id>")
@bp.output({}, status_code=204, description="Deleted")
def delete_user(user_id: int):
    session = get_session()
    session.delete(get_or_404(User, user_id))
    _invalidate(session, user_id)
    # The tweet and feed services delete what the user left there.
    for consumer in ("tweet", "feed"):
        emit(session, consumer, "user.deleted", {"user_id": user_id})
    session.commit()
    return ""
