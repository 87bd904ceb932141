"""Work a process forked from this one must do first (gunicorn's preload_app
forks workers from a master that has already built the app)."""
from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_forked_children(obj: T, reset: Callable[[T], None]) -> None:
    """Call reset(obj) in every child forked from now on, while obj lives.
    obj is held weakly: registering does not keep it alive."""
    ref = weakref.ref(obj)

    def run() -> None:
        if (alive := ref()) is not None:
            reset(alive)

    os.register_at_fork(after_in_child=run)
