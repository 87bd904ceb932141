"""`make run`, the production-mode path the README documents: it migrates
both databases and serves both services under gunicorn."""
from __future__ import annotations

import os
import signal
import subprocess

import requests

from support.servers import REPO, _wait_for, find_free_port


def test_make_run_migrates_and_serves_both_services(postgres, redis_server, tmp_path):
    ports = {"USER_PORT": str(find_free_port()), "TWEET_PORT": str(find_free_port())}
    env = {**os.environ, **ports, "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1",
           "USER_DATABASE_URL": postgres.create_database("make_run_users"),
           "TWEET_DATABASE_URL": postgres.create_database("make_run_tweets"),
           "REDIS_URL": redis_server.url}
    log = tmp_path / "make-run.log"
    with log.open("w") as out:
        make = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    users, tweets = (f"http://127.0.0.1:{ports[p]}" for p in ("USER_PORT", "TWEET_PORT"))
    try:
        def both_up() -> bool:
            assert make.poll() is None, log.read_text()
            try:
                return all(requests.get(f"{url}/readyz", timeout=1).ok for url in (users, tweets))
            except requests.ConnectionError:
                return False

        _wait_for(both_up, 60, "make run to serve both services")
        created = requests.post(f"{users}/users", json={"name": "Ali"}, timeout=5)
        assert created.status_code == 201 and created.json()["id"] == 1
        tweet = requests.post(f"{tweets}/tweets", json={"user_id": 1, "content": "Hello"}, timeout=5)
        assert tweet.status_code == 201 and tweet.json()["id"] == 1
        assert "gunicorn" in requests.get(f"{users}/healthz", timeout=5).headers["Server"]
    finally:
        os.killpg(make.pid, signal.SIGINT)
        make.wait(timeout=30)
