"""A dependency fails while requests keep coming: the user service (for the
tweet service), Redis (for the user service), each service's PostgreSQL."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from faults.helpers import describe, is_503, start_service, wait_until
from faults.load import run_load

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------- user service down


def test_user_service_killed(stack, summary):
    [uid] = stack.create_users(1)
    tc = stack.tc()
    assert tc.post("/tweets", json={"user_id": uid, "content": "before"}).status == 201

    stack.users.kill()  # SIGKILL master and workers: a crashed container

    def post(rng, when):
        return tc.post("/tweets", json={"user_id": uid, "content": f"during {uuid.uuid4()}"},
                       headers={"Idempotency-Key": str(uuid.uuid4())}, scheduled=when)

    outage = run_load(post, rate=40, duration=3, threads=8)
    bad = outage.failures(is_503)
    slow = [r for r in outage.results if r.latency >= 1.0]
    stored = stack.query("tweets", "SELECT count(*) FROM tweets WHERE content LIKE 'during %%'")[0][0]

    # The user service comes back on the same address; the tweet service is not touched.
    old_pids = stack.tweets.worker_pids()
    stack.extra.append(start_service("user_service", {"DATABASE_URL": stack.user_db_url,
                                                      "REDIS_URL": stack.redis.url},
                                     port=stack.users.port))
    back_at = time.monotonic()
    streak = {"n": 0, "requests": 0}

    def twenty_in_a_row():
        streak["requests"] += 1
        r = tc.post("/tweets", json={"user_id": uid, "content": f"after {uuid.uuid4()}"},
                    headers={"Idempotency-Key": str(uuid.uuid4())})
        assert r.status in (201, 503), describe([r])
        streak["n"] = streak["n"] + 1 if r.status == 201 else 0
        return streak["n"] >= 20

    wait_until(twenty_in_a_row, timeout=10, interval=0.02, what="20 tweets in a row after recovery")
    recovered_in = time.monotonic() - back_at
    acked_after = stack.query("tweets", "SELECT count(*) FROM tweets WHERE content LIKE 'after %%'")[0][0]

    summary("user service killed", outage.count + streak["requests"], len(bad) + len(slow),
            note=f"outage p99 {outage.p(0.99) * 1000:.0f} ms, all 503+Retry-After; "
                 f"20 tweets in a row {recovered_in:.1f} s after restart")
    assert not bad, f"{len(bad)} answers were not 503 problem+json with Retry-After: {describe(bad)}"
    assert not slow, f"{len(slow)} answers took 1 s or more: max {max(r.latency for r in slow):.2f} s"
    assert stored == 0, f"{stored} tweets were stored while the user service was down"
    assert recovered_in < 5, f"took {recovered_in:.1f} s to recover"
    assert stack.tweets.worker_pids() == old_pids, "the tweet service was restarted"
    assert acked_after >= 20


# --------------------------------------------------------------------------- Redis down / frozen


def _warm(stack, ids):
    uc = stack.uc()
    for i in ids:
        assert uc.get(f"/users/{i}").status == 200
        assert uc.get(f"/users/{i}").status == 200
    uc.close()


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
def test_redis_outage(stack, summary, fault):
    ids = stack.create_users(30)
    patched, deleted, others = ids[0], ids[1], ids[2:]
    _warm(stack, ids)
    hits_before = stack.metric("users", "user_cache_lookups_total", result="hit")
    errors_before = stack.metric("users", "user_cache_errors_total")
    assert hits_before > 0

    uc = stack.uc()
    outage_seconds = 3.0
    if fault == "stopped":
        stack.redis.stop()
    else:
        stack.redis.pause(int(outage_seconds * 1000))  # CLIENT PAUSE ALL: connected, silent
    outage_started = time.monotonic()

    def lookup(rng, when):
        return uc.get(f"/users/{rng.choice(others)}", scheduled=when)

    writes = {}

    def write_during_outage():
        time.sleep(0.5)
        writes["patch"] = uc.request("PATCH", f"/users/{patched}", json={"name": "renamed"})
        writes["delete"] = uc.request("DELETE", f"/users/{deleted}")
        writes["ready"] = uc.get("/readyz")

    writer = threading.Thread(target=write_during_outage)
    writer.start()
    outage = run_load(lookup, rate=60, duration=outage_seconds - 0.5, threads=8)
    writer.join()
    errors_during = stack.metric("users", "user_cache_errors_total")
    assert time.monotonic() - outage_started < outage_seconds, "the load ran past the outage"

    if fault == "stopped":
        stack.redis.start()  # empty: a restarted Redis has nothing stale
    ended = outage_started + outage_seconds if fault == "frozen" else time.monotonic()

    # From every worker (many requests on fresh connections), until the
    # window is over and beyond: the patched user shows its new name, the
    # deleted one is gone.
    stale: list[float] = []
    checks = 0
    deadline = ended + 3.0
    while time.monotonic() < deadline:
        for user_id, fresh in ((patched, lambda r: r.status == 200 and r.json()["name"] == "renamed"),
                               (deleted, lambda r: r.status == 404)):
            r = stack.uc().get(f"/users/{user_id}")
            checks += 1
            if not fresh(r):
                stale.append(time.monotonic() - ended)
        time.sleep(0.01)
    # (Only the cache's rows: the events for the tweet and feed services,
    # which this stack does not run, stay queued.)
    pending = wait_until(
        lambda: stack.query("users", "SELECT count(*) FROM outbox WHERE destination = 'cache'"
                            )[0][0] == 0 or None,
        timeout=5, what="the recorded invalidations to be replayed")

    _warm(stack, others[:5])
    hits_after = stack.metric("users", "user_cache_lookups_total", result="hit")

    bad = outage.failures(lambda r: r.status == 200)
    slow = [r for r in outage.results if r.latency > 0.5]
    late_stale = [t for t in stale if t > 1.0]
    summary(f"Redis {fault}", outage.count + checks + 3, len(bad) + len(slow) + len(late_stale),
            note=f"lookups p99 {outage.p(0.99) * 1000:.0f} ms, max {outage.p(1.0) * 1000:.0f} ms; "
                 f"cache errors +{errors_during - errors_before:.0f}; stale reads after "
                 f"recovery: {len(stale)} (last at {max(stale, default=0):.2f} s)")
    assert not bad, describe(bad)
    assert not slow, f"{len(slow)} lookups over 0.5 s, max {outage.p(1.0):.2f} s"
    assert writes["patch"].status == 200, describe([writes["patch"]])
    assert writes["delete"].status == 204, describe([writes["delete"]])
    assert writes["ready"].status == 200, "a cache outage made the service unready"
    assert errors_during > errors_before, "cache errors were not counted in /metrics"
    assert hits_after > hits_before, "cache hits did not resume"
    assert pending
    assert not late_stale, f"stale values served up to {max(stale):.2f} s after Redis came back"
    # Pushed to zero: a process whose breaker had opened replays the missed
    # invalidations before trusting Redis again; one that saw no traffic
    # during the outage replays on its first lookup (its check is overdue).
    assert not stale, f"{len(stale)} stale reads, the last {max(stale):.2f} s after Redis came back"


# --------------------------------------------------------------------------- PostgreSQL down


@pytest.mark.parametrize("down", ["users", "tweets"])
def test_database_down(stack, summary, down):
    ids = stack.create_users(5)
    uc, tc = stack.uc(), stack.tc()
    for i in ids:
        assert tc.post("/tweets", json={"user_id": i, "content": f"hello {i}"}).status == 201
    _warm(stack, ids)
    acked_users, acked_tweets = len(ids), len(ids)
    pg = stack.user_pg if down == "users" else stack.tweet_pg
    broken, healthy = (uc, tc) if down == "users" else (tc, uc)

    if down == "users":
        # Everything here needs the user database (a page of users is never cached).
        db_ops = [lambda k: uc.post("/users", json={"name": "x"}, headers={"Idempotency-Key": k}),
                  lambda k: uc.get("/users?limit=5"),
                  lambda k: uc.request("PATCH", f"/users/{ids[0]}", json={"name": "y"}),
                  lambda k: uc.get("/users/999999")]
        other_ops = [lambda k: tc.get("/tweets?limit=5"), lambda k: tc.get("/tweets/1"),
                     lambda k: tc.get("/readyz"),
                     # the author is in the user service's cache: tweeting still works
                     lambda k: tc.post("/tweets", json={"user_id": ids[1], "content": k},
                                       headers={"Idempotency-Key": k})]
    else:
        db_ops = [lambda k: tc.post("/tweets", json={"user_id": ids[0], "content": k},
                                    headers={"Idempotency-Key": k}),
                  lambda k: tc.get("/tweets?limit=5"), lambda k: tc.get("/tweets/1"),
                  lambda k: tc.request("DELETE", "/tweets/2")]
        other_ops = [lambda k: uc.get(f"/users/{ids[0]}"), lambda k: uc.get("/users?limit=5"),
                     lambda k: uc.get("/readyz"),
                     lambda k: uc.post("/users", json={"name": "z"}, headers={"Idempotency-Key": k})]

    pg.kill()  # SIGKILL the postmaster and its backends
    try:
        def op(rng, when):
            r = rng.choice(db_ops)(str(uuid.uuid4()))
            r.tag = "down"
            return r

        def other(rng, when):
            r = rng.choice(other_ops)(str(uuid.uuid4()))
            r.tag = "other"
            return r

        report = run_load(lambda rng, when: (op if rng.random() < 0.5 else other)(rng, when),
                          rate=40, duration=2.5, threads=8)
        ready = broken.get("/readyz")
        other_ready = healthy.get("/readyz")
    finally:
        pg.start()  # crash recovery, same port
    back_at = time.monotonic()
    downs = [r for r in report.results if r.tag == "down"]
    others = [r for r in report.results if r.tag == "other"]
    bad_down = [r for r in downs if not is_503(r)]
    bad_other = [r for r in others if r.status is None or r.status >= 300]
    server_errors = [r for r in report.results if r.status is None or r.status == 500]

    # Recovers by itself: no restart, the pool reconnects.
    pids = (stack.users if down == "users" else stack.tweets).worker_pids()
    streak = {"n": 0, "requests": 0}

    def ok_streak():
        streak["requests"] += 1
        r = db_ops[0](str(uuid.uuid4()))
        streak["n"] = streak["n"] + 1 if r.status == 201 else 0
        return streak["n"] >= 10

    wait_until(ok_streak, timeout=15, interval=0.05, what="writes to succeed again")
    recovered_in = time.monotonic() - back_at
    assert broken.get("/readyz").status == 200
    # Writes acknowledged before the crash are still there.
    kept_users = stack.query("users", "SELECT count(*) FROM users")[0][0]
    kept_tweets = stack.query("tweets", "SELECT count(*) FROM tweets")[0][0]

    summary(f"{down} PostgreSQL killed", report.count + streak["requests"],
            len(bad_down) + len(bad_other), lost=max(0, acked_users - kept_users) +
            max(0, acked_tweets - kept_tweets),
            note=f"{len(downs)} answered 503 (p99 {max((r.latency for r in downs), default=0) * 1000:.0f} ms max), "
                 f"other service {len(others) - len(bad_other)}/{len(others)} OK; "
                 f"recovered {recovered_in:.1f} s after restart")
    assert not server_errors, describe(server_errors)
    assert not bad_down, describe(bad_down)
    assert not bad_other, describe(bad_other)
    assert ready.status == 503, f"/readyz said {ready.status} with the database down"
    assert other_ready.status == 200
    assert max(r.latency for r in downs) < 1.0
    assert (stack.users if down == "users" else stack.tweets).worker_pids() == pids
    assert kept_users >= acked_users and kept_tweets >= acked_tweets
