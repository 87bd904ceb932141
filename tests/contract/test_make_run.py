"""`make run`, the production-mode path the README documents: it migrates
every database and serves every service under gunicorn."""
from __future__ import annotations

import os
import signal
import subprocess

import requests

from support.servers import REPO, _wait_for, find_free_port


def test_make_run_migrates_and_serves_every_service(postgres, redis_server, tmp_path):
    ports = {name: str(find_free_port()) for name in ("USER_PORT", "TWEET_PORT", "FEED_PORT")}
    env = {**os.environ, **ports, "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1",
           "USER_DATABASE_URL": postgres.create_database("make_run_users"),
           "TWEET_DATABASE_URL": postgres.create_database("make_run_tweets"),
           "FEED_DATABASE_URL": postgres.create_database("make_run_feed"),
           "REDIS_URL": redis_server.url}
    log = tmp_path / "make-run.log"
    with log.open("w") as out:
        make = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    users, tweets, feed = (f"http://127.0.0.1:{ports[p]}"
                           for p in ("USER_PORT", "TWEET_PORT", "FEED_PORT"))
    try:
        def all_up() -> bool:
            assert make.poll() is None, log.read_text()
            try:
                return all(requests.get(f"{url}/readyz", timeout=1).ok for url in (users, tweets, feed))
            except requests.ConnectionError:
                return False

        _wait_for(all_up, 60, "make run to serve every service")
        created = requests.post(f"{users}/users", json={"name": "Ali"}, timeout=5)
        assert created.status_code == 201 and created.json()["id"] == 1
        tweet = requests.post(f"{tweets}/tweets", json={"user_id": 1, "content": "Hello"}, timeout=5)
        assert tweet.status_code == 201 and tweet.json()["id"] == 1
        timeline = requests.get(f"{feed}/timelines/1", timeout=5)
        assert timeline.status_code == 200 and timeline.json()["data"][0]["id"] == 1
        assert "gunicorn" in requests.get(f"{users}/healthz", timeout=5).headers["Server"]
    finally:
        os.killpg(make.pid, signal.SIGINT)
        make.wait(timeout=30)
