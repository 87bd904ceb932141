"""A rolling update under a steady request stream must fail no request.

    python rollout_under_load.py --url http://127.0.0.1 --host chirp.localhost \
        -- helm upgrade chirp charts/chirp ... --wait

Sends requests through the Ingress from a few threads (reads of both
services and user creations), runs the command (the rollout), keeps the
stream going for --settle seconds after it returns (old pods finish
draining), then prints the tally. Exit 1 if any request failed (non-2xx or
no answer), the command failed, or too few requests were made to mean
anything. Standard library only (`make rollout-check`).
"""
from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import threading
import time
import uuid

from conftest import call  # the same Host-header client as the smoke tests


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--settle", type=float, default=15.0)
    parser.add_argument("--min-requests", type=int, default=200)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("the rollout command is missing (after --)")

    tally: collections.Counter = collections.Counter()
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def one(i: int) -> tuple[str, int | str]:
        if i % 10 == 0:
            handle = "ro_" + uuid.uuid4().hex[:10]
            return "POST /users", call("POST", "/users", {"name": "Rollout", "handle": handle}).status
        path = "/users?limit=5" if i % 2 else "/tweets?limit=5"
        return f"GET {path}", call("GET", path).status

    def worker() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                what, status = one(i)
            except OSError as error:  # no answer at all
                what, status = "request", type(error).__name__
            with lock:
                tally[status] += 1
                if not (isinstance(status, int) and 200 <= status < 300):
                    failures.append(f"{time.strftime('%H:%M:%S')} {what} -> {status}")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.threads)]
    for t in threads:
        t.start()
    time.sleep(2)  # the stream is flowing before the rollout starts
    print("rollout:", " ".join(command), flush=True)
    rc = subprocess.call(command)
    time.sleep(args.settle)
    stop.set()
    for t in threads:
        t.join(timeout=30)

    total = sum(tally.values())
    print(f"requests: {total}, by status: {dict(tally)}")
    for line in failures[:50]:
        print("FAILED", line)
    if rc != 0:
        print(f"the rollout command exited {rc}")
    ok = rc == 0 and not failures and total >= args.min_requests
    print("zero failed requests" if ok else "rollout under load: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
