"""A user write and its cache invalidation commit together (an outbox row):
a process killed between its commit and the invalidation leaves the row, and
another process's relay applies it, after which no read anywhere serves the
old user."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import requests
from sqlalchemy import text

from support.servers import REPO

# A user service process that commits a PATCH, then is killed (SIGKILL)
# the moment it would apply the invalidation.
CRASHING_WRITER = textwrap.dedent("""
    import os, signal, sys
    import user_service
    from user_service.settings import UserSettings

    app = user_service.create_app(UserSettings(database_url=sys.argv[1], redis_url=sys.argv[2]))
    app.extensions["store"].outbox.sinks["cache"] = lambda events: os.kill(os.getpid(), signal.SIGKILL)
    app.test_client().patch(f"/users/{sys.argv[3]}", json={"name": "after"})
    print("the process survived its invalidation")
""")


def _names(url: str, user_id: int, reads: int) -> set[str]:
    """The names `reads` fresh connections read (spread over the workers)."""
    return {requests.get(f"{url}/users/{user_id}", timeout=10).json()["name"] for _ in range(reads)}


def _pending_invalidations(stack) -> int:
    with stack.user_db().connect() as connection:
        return connection.execute(
            text("SELECT count(*) FROM outbox WHERE destination = 'cache'")).scalar_one()


def test_a_write_killed_before_its_invalidation_is_never_read_stale(postgres_stack, second_replica):
    stack = postgres_stack
    replicas = (stack.user_process.url, second_replica.url)
    user = requests.post(f"{replicas[0]}/users", json={"name": "before"}, timeout=10).json()
    for url in replicas:
        assert _names(url, user["id"], 8) == {"before"}  # cached in Redis and in every worker

    env = {**os.environ, "PYTHONPATH": str(REPO / "services")}
    crashed = subprocess.run([sys.executable, "-c", CRASHING_WRITER, stack.user_db_url,
                              stack.redis_url, str(user["id"])], env=env, capture_output=True, text=True)
    assert crashed.returncode == -9, crashed.stdout + crashed.stderr

    # Committed with its invalidation; the relays (polling) catch up. (The
    # write's event for the feed waits too: this stack has no feed.)
    deadline = time.monotonic() + 5
    while _pending_invalidations(stack):
        assert time.monotonic() < deadline, "no relay applied the invalidation"
        time.sleep(0.05)
    for url in replicas:
        assert _names(url, user["id"], 20) == {"after"}
    assert stack.users.get(f"/users/{user['id']}").json["name"] == "after"
