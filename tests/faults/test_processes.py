"""Processes die or are replaced under load: a worker SIGKILLed, a graceful
reload (SIGHUP), a graceful stop (SIGTERM) with a new process taking over."""
from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from faults.helpers import describe, start_service, wait_until
from faults.load import Background

pytestmark = pytest.mark.slow


def _keyed_writes(stack, user_ids, tc, uc, retry_busy=True):
    """A load op: 3 of 4 POST /tweets, 1 of 4 POST /users, each with its own
    Idempotency-Key, which is also the content or name, so rows can be matched
    to keys. The client repeats the same key on a lost connection (and, with
    retry_busy, on a 409 in flight or a 503)."""

    def op(rng, when):
        key = uuid.uuid4().hex
        headers = {"Idempotency-Key": key}
        if rng.random() < 0.75:
            r = tc.post("/tweets", json={"user_id": rng.choice(user_ids), "content": key},
                        headers=headers, scheduled=when, retry_busy=retry_busy, deadline=15)
            r.tag = "tweet"
        else:
            r = uc.post("/users", json={"name": key}, headers=headers, scheduled=when,
                        retry_busy=retry_busy, deadline=15)
            r.tag = "user"
        return r

    return op


def _check_exactly_once(stack, results):
    """(lost, duplicates, unacknowledged rows) of keyed writes against the databases."""
    rows = {"tweet": {}, "user": {}}
    for key, n in stack.query("tweets", "SELECT content, count(*) FROM tweets GROUP BY content"):
        rows["tweet"][key] = n
    for key, n in stack.query("users", "SELECT name, count(*) FROM users GROUP BY name"):
        rows["user"][key] = n
    lost = dup = 0
    acked = {"tweet": set(), "user": set()}
    for r in results:
        if r.key is None:
            continue
        n = rows[r.tag].get(r.key, 0)
        dup += max(0, n - 1)
        if r.status is not None and 200 <= r.status < 300:
            acked[r.tag].add(r.key)
            lost += n == 0
            body = r.json()
            assert body.get("content", body.get("name")) == r.key, describe([r])
    keys = {r.key for r in results if r.key}
    unacked = sum(1 for kind in rows for k in rows[kind] if k in keys and k not in acked[kind])
    return lost, dup, unacked


def test_worker_sigkill_mid_load(stack, summary):
    user_ids = stack.create_users(10)
    uc, tc = stack.uc(), stack.tc()
    killed = []
    t0 = time.monotonic()
    with Background(_keyed_writes(stack, user_ids, tc, uc), rate=60, duration=7, threads=12) as load:
        for at, svc in ((1.5, stack.tweets), (3.0, stack.users), (4.5, stack.tweets)):
            time.sleep(max(0.0, at - (time.monotonic() - t0)))
            pid = svc.worker_pids()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    report = load.wait()
    for svc in (stack.users, stack.tweets):  # gunicorn replaced the dead workers
        wait_until(lambda: len(svc.worker_pids()) == 2, 10, what="workers to be replaced")
    lost, dup, unacked = _check_exactly_once(stack, report.results)
    failed = report.failures(lambda r: r.status in (200, 201))
    # A killed worker's claim on a key dies with its transaction, so the
    # client's retry of that key is served, not held off with 409.
    replayed = sum(1 for r in report.results if r.headers.get("idempotent-replayed") == "true")
    summary("worker SIGKILL x3, keyed retries", report.count, len(failed), lost, dup,
            note=f"{report.retried()} client retries, {replayed} replayed responses, "
                 f"{unacked} rows never acknowledged")
    assert not set(killed) & (set(stack.users.worker_pids()) | set(stack.tweets.worker_pids()))
    assert lost == 0, f"{lost} acknowledged writes are not in the database"
    assert dup == 0, f"{dup} duplicate rows for one Idempotency-Key"
    assert unacked == 0, f"{unacked} rows whose request was never acknowledged"
    assert not failed, f"{len(failed)} requests failed after retries: {describe(failed)}"


def _mixed(stack, user_ids, tc, uc, retry_busy=False):
    """Reads and keyed writes on both services."""
    writes = _keyed_writes(stack, user_ids, tc, uc, retry_busy=retry_busy)

    def op(rng, when):
        x = rng.random()
        if x < 0.4:
            r = uc.get(f"/users/{rng.choice(user_ids)}", scheduled=when, retry_busy=retry_busy)
        elif x < 0.6:
            r = tc.get(f"/tweets?user_id={rng.choice(user_ids)}&limit=10", scheduled=when,
                       retry_busy=retry_busy)
        elif x < 0.7:
            r = tc.get("/tweets?limit=10&expand=author", scheduled=when, retry_busy=retry_busy)
        else:
            return writes(rng, when)
        r.tag = "read"
        return r

    return op


def test_sighup_reload_under_load(stack, summary):
    """gunicorn's SIGHUP forks the new workers and SIGTERMs the old ones at
    once: until the new ones have imported the app (about 0.7 s idle, several
    seconds on a busy 2-core machine) requests wait in the listen backlog;
    none is refused or cut. Waiting longer than the tweet service's 2 s read
    timeout to the user service turns a POST /tweets into a 503 with
    Retry-After and nothing stored, which the client (honouring Retry-After,
    with the same Idempotency-Key) repeats: counted in the notes."""
    user_ids = stack.create_users(10)
    uc, tc = stack.uc(), stack.tc()
    old = {s: set(s.worker_pids()) for s in (stack.users, stack.tweets)}
    with Background(_mixed(stack, user_ids, tc, uc, retry_busy=True), rate=60, duration=8,
                    threads=12) as load:
        time.sleep(1.5)
        stack.users.signal(signal.SIGHUP)
        time.sleep(2.5)
        stack.tweets.signal(signal.SIGHUP)
    report = load.wait()
    for s in (stack.users, stack.tweets):
        wait_until(lambda: len(s.worker_pids()) == 2 and not (set(s.worker_pids()) & old[s]), 15,
                   what="the workers to be replaced")
    failed = report.failures(lambda r: r.status in (200, 201))
    lost, dup, _ = _check_exactly_once(stack, report.results)
    busy = sum(1 for r in report.results for why in r.retried if why == 503)
    summary("graceful reload (SIGHUP both)", report.count, len(failed), lost, dup,
            note=f"{report.retried()} client retries ({busy} after a 503 + Retry-After, the rest "
                 f"stale keep-alive), p99 {report.p(0.99) * 1000:.0f} ms")
    assert not failed, f"{len(failed)} failed: {describe(failed)}"
    assert lost == dup == 0


@pytest.mark.parametrize("order", ["handover", "restart"])
def test_sigterm_with_new_process(stack, summary, order):
    """handover (the user service): the new process binds the same port
    (SO_REUSEPORT) and is healthy before the old one gets SIGTERM, so the
    port never refuses; the tweet service's calls ride through it too.
    restart (the tweet service): SIGTERM first, then the new process starts;
    in between the port refuses connections, which carried no request, so
    the client resends them (safe for any method after ECONNREFUSED).
    Either way the old process finishes every request it accepted, and
    every request ends in success."""
    user_ids = stack.create_users(10)
    uc, tc = stack.uc(), stack.tc()
    if order == "handover":
        old, service = stack.users, "user_service"
        env = {"DATABASE_URL": stack.user_db_url, "REDIS_URL": stack.redis.url}
    else:
        old, service = stack.tweets, "tweet_service"
        env = {"DATABASE_URL": stack.tweet_pg.url(stack.tweet_db), "USER_SERVICE_URL": stack.users.url}
    with Background(_mixed(stack, user_ids, tc, uc), rate=60, duration=8, threads=12) as load:
        time.sleep(2)
        if order == "handover":
            stack.extra.append(start_service(service, env, port=old.port))
            switched = time.monotonic()
            old.signal(signal.SIGTERM)
        else:
            old.signal(signal.SIGTERM)
            switched = time.monotonic()
            stack.extra.append(start_service(service, env, port=old.port))
        gap = time.monotonic() - switched
        exit_code = old.proc.wait(timeout=30)
    report = load.wait()
    failed = report.failures(lambda r: r.status in (200, 201))
    lost, dup, _ = _check_exactly_once(stack, report.results)
    refused = sum(1 for r in report.results if r.attempts > 1)
    summary(f"SIGTERM + new process ({order})", report.count, len(failed), lost, dup,
            note=f"{report.retried()} client retries on {refused} requests"
                 + (f" (new process up {gap:.1f} s after SIGTERM)" if order == "restart" else "")
                 + f", p99 {report.p(0.99) * 1000:.0f} ms, old master exit {exit_code}")
    assert exit_code == 0, "the old master did not stop gracefully"
    assert not failed, f"{len(failed)} failed: {describe(failed)}"
    assert lost == dup == 0
