"""/users: create, look up (one, a batch, or a page), update, delete.

Each view parses its input, makes one store call and returns the declared
output; errors are problems (common/problems.py) the store or the parsing raised.
"""
from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app, url_for

from common import idempotency

from .schemas import UserCreate, UserList, UserOut, UsersQuery, UserUpdate
from .store import UserStore

bp = APIBlueprint("users", __name__, tag="Users")


def _store() -> UserStore:
    return current_app.extensions["store"]


def _location(user_id: int) -> str:
    return url_for("users.get_user", user_id=user_id)


@bp.post("/users")
@bp.input(UserCreate, arg_name="body")
@bp.output(UserOut, status_code=201, description="The user, created")
@bp.doc(responses={409: "The handle is taken, or the Idempotency-Key is in use"})
def create_user(body: UserCreate):
    return idempotency.created(_store().create(body, idempotency.requested()), _location)


@bp.get("/users/<id:user_id>")
@bp.output(UserOut)
@bp.doc(responses={404: "No such user"})
def get_user(user_id: int):
    return _store().get(user_id)


@bp.get("/users")
@bp.input(UsersQuery, location="query", arg_name="query")
@bp.output(UserList, description="A page of users or, with `ids`, a batch lookup")
def list_users(query: UsersQuery):
    if query.ids:
        return _store().batch(query.id_list)
    return _store().page(query.after_id, query.limit)


@bp.patch("/users/<id:user_id>")
@bp.input(UserUpdate, arg_name="body")
@bp.output(UserOut, description="The user, updated")
@bp.doc(responses={404: "No such user", 409: "The handle is taken"})
def update_user(user_id: int, body: UserUpdate):
    return _store().update(user_id, body)


@bp.delete("/users/<id:user_id>")
@bp.output({}, status_code=204, description="Deleted")
@bp.doc(responses={404: "No such user"})
def delete_user(user_id: int):
    _store().delete(user_id)
    return ""
