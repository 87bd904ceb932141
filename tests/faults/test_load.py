"""Load held: a 60-second mixed run at a fixed rate this machine sustains
(2 cores shared by both services, PostgreSQL, Redis and this generator)."""
from __future__ import annotations

import os
import uuid

import pytest

from faults.helpers import describe
from faults.load import run_load

pytestmark = pytest.mark.slow

RATE = float(os.environ.get("FAULTS_LOAD_RATE", 200))  # requests per second
DURATION = float(os.environ.get("FAULTS_LOAD_SECONDS", 60))
P99_LIMIT = 1.0  # seconds, from the scheduled start (so queueing counts)


def test_mixed_load_held(stack, summary, capsys):
    user_ids = stack.create_users(50)
    uc, tc = stack.uc(), stack.tc()
    for i in user_ids[:10]:
        assert tc.post("/tweets", json={"user_id": i, "content": "seed"}).status == 201

    def op(rng, when):
        x = rng.random()
        if x < 0.40:
            r, ok = uc.get(f"/users/{rng.choice(user_ids)}", scheduled=when), (200,)
        elif x < 0.50:
            ids = ",".join(str(rng.choice(user_ids)) for _ in range(10))
            r, ok = uc.get(f"/users?ids={ids}", scheduled=when), (200,)
        elif x < 0.65:
            r, ok = tc.get(f"/tweets?user_id={rng.choice(user_ids)}&limit=20", scheduled=when), (200,)
        elif x < 0.72:
            r, ok = tc.get("/tweets?limit=20&expand=author", scheduled=when), (200,)
        elif x < 0.90:
            key = uuid.uuid4().hex
            r = tc.post("/tweets", json={"user_id": rng.choice(user_ids), "content": key},
                        headers={"Idempotency-Key": key}, scheduled=when)
            ok = (201,)
        elif x < 0.96:
            r = uc.request("PATCH", f"/users/{rng.choice(user_ids)}",
                           json={"name": f"name {rng.randrange(10**6)}"}, scheduled=when)
            ok = (200,)
        else:
            key = uuid.uuid4().hex
            r = uc.post("/users", json={"name": key}, headers={"Idempotency-Key": key}, scheduled=when)
            ok = (201,)
        r.tag = "ok" if r.status in ok else "bad"
        return r

    report = run_load(op, rate=RATE, duration=DURATION, threads=24)
    errors = [r for r in report.results if r.tag == "bad"]
    achieved = report.count / DURATION
    line = (f"mixed load: {report.count} requests in {DURATION:.0f} s at {RATE:.0f}/s "
            f"({achieved:.1f}/s achieved), errors {len(errors)}, p50 {report.p(0.5) * 1000:.0f} ms, "
            f"p99 {report.p(0.99) * 1000:.0f} ms, max {report.p(1.0) * 1000:.0f} ms")
    with capsys.disabled():
        print("\n" + line)
    summary(f"mixed load {DURATION:.0f} s at {RATE:.0f}/s", report.count, len(errors),
            note=f"p50 {report.p(0.5) * 1000:.0f} ms, p99 {report.p(0.99) * 1000:.0f} ms, "
                 f"max {report.p(1.0) * 1000:.0f} ms")
    assert not errors, f"{len(errors)} errors: {describe(errors)}"
    assert report.count == report.scheduled, "the generator could not keep the rate"
    assert report.p(0.99) < P99_LIMIT, line
