"""X-Request-ID: taken from the caller when sane, otherwise minted, echoed on
every response, attached to every log line and forwarded to other services."""
from __future__ import annotations

import random
import re

from flask import Flask, g, has_request_context, request

HEADER = "X-Request-ID"
# Up to 128 printable ASCII characters; anything else could smuggle line
# breaks into logs or headers, so it is replaced rather than echoed.
_VALID = re.compile(r"[\x20-\x7e]{1,128}")


def new_request_id() -> str:
    # 128 random bits as hex, like uuid4().hex but without a getrandom()
    # syscall per request. An id must be unique, not unguessable; `random` is
    # reseeded in each forked worker.
    return f"{random.getrandbits(128):032x}"


def current_request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


def _assign() -> None:
    incoming = request.headers.get(HEADER, "")
    g.request_id = incoming if _VALID.fullmatch(incoming) else new_request_id()


def _echo(response):
    response.headers[HEADER] = g.get("request_id") or new_request_id()
    return response


def init_app(app: Flask) -> None:
    app.before_request(_assign)
    app.after_request(_echo)
