"""Bad input, by hand and by schemathesis, against the real gunicorn services:
every case is a 4xx problem (never a 500) and changes no data."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from support.servers import REPO

from faults.helpers import describe, is_problem
from faults.load import Result

pytestmark = pytest.mark.slow

BIG = 99999999999999999999  # > 2^64
JSON = {"Content-Type": "application/json"}


def _raw(port: int, data: bytes, timeout: float = 10) -> Result:
    """Send bytes as they are (no client normalisation) and parse the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    result = Result("RAW", data[:60].decode("latin-1"))
    if lines and lines[0].startswith("HTTP/"):
        result.status = int(lines[0].split()[1])
        result.headers = {k.strip().lower(): v.strip() for k, _, v in
                          (line.partition(":") for line in lines[1:])}
        result.body = body
    return result


def _cases(user_id: int, tweet_id: int):
    """(service, method, path, body bytes, headers, expected statuses)."""
    u, t = "users", "tweets"
    deep = b"[" * 5000 + b"]" * 5000
    cases = [
        # huge bodies
        (u, "POST", "/users", b'{"name": "' + b"a" * (1 << 20) + b'"}', JSON, {413}),
        (t, "POST", "/tweets", b'{"user_id": 1, "content": "' + b"x" * 70000 + b'"}', JSON, {413}),
        (u, "PATCH", f"/users/{user_id}", b'{"name": "' + b"a" * 65536 + b'"}', JSON, {413}),
        # deep nesting (under the size limit)
        (u, "POST", "/users", deep, JSON, {400, 422}),
        (t, "POST", "/tweets", b'{"user_id": 1, "content": ' + deep + b"}", JSON, {400, 422}),
        (u, "PATCH", f"/users/{user_id}", b'{"name": ' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"}",
         JSON, {400, 422}),
        # invalid UTF-8, NUL bytes
        (u, "POST", "/users", b'{"name": "\xff\xfe\xc3\x28"}', JSON, {400}),
        (t, "POST", "/tweets", b'{"user_id": 1, "content": "\xed\xa0\x80"}', JSON, {400}),
        (u, "POST", "/users", b'{"name": "a\x00b"}', JSON, {400}),
        (u, "POST", "/users", b'{"name": "a\\u0000b"}', JSON, {422}),
        (t, "POST", "/tweets", b'{"user_id": 1, "content": "\\u0000"}', JSON, {422}),
        (u, "PATCH", f"/users/{user_id}", b'{"name": "\\u0000"}', JSON, {422}),
        (u, "POST", "/users", b'{"name": "ok", "handle": "a\\u0000"}', JSON, {422}),
        # SQL injection where the value is not free text
        (u, "POST", "/users", b'{"name": "x", "handle": "a\'; DROP TABLE users;--"}', JSON, {422}),
        (u, "GET", "/users/1%20OR%201=1", b"", {}, {404}),
        (u, "GET", "/users/1;DROP%20TABLE%20users", b"", {}, {404}),
        (u, "GET", "/users?ids=1)%20OR%201=1--", b"", {}, {400}),
        (u, "GET", "/users?cursor=%27%20OR%20%271%27=%271", b"", {}, {400}),
        (t, "GET", "/tweets?user_id=1%20OR%201=1", b"", {}, {400}),
        (t, "DELETE", "/tweets/1%20OR%201=1", b"", {}, {404}),
        (u, "DELETE", "/users/1';--", b"", {}, {404}),
        # header injection and bad headers
        (u, "POST", "/users", b'{"name": "x"}', {**JSON, "Idempotency-Key": "a b\tc"}, {400}),
        (u, "POST", "/users", b'{"name": "x"}', {**JSON, "Idempotency-Key": "k" * 300}, {400}),
        (t, "POST", "/tweets", b'{"user_id": 1, "content": "x"}',
         {**JSON, "Idempotency-Key": "caf\xc3\xa9"}, {400}),
        (u, "POST", "/users", b'{"name": "x"}', {"Content-Type": "text/plain"}, {415}),
        (t, "POST", "/tweets", b'{"user_id": 1, "content": "x"}', {"Content-Type": "application/xml"}, {415}),
        (u, "POST", "/users", b'{"name": "x"}', {}, {415}),
        # integer overflow and out-of-range ids
        (u, "GET", f"/users/{BIG}", b"", {}, {404}),
        (u, "GET", "/users/9223372036854775808", b"", {}, {404}),
        (u, "GET", "/users/0", b"", {}, {404}),
        (u, "GET", "/users/-1", b"", {}, {404}),
        (u, "PATCH", f"/users/{BIG}", b'{"name": "x"}', JSON, {404}),
        (u, "DELETE", f"/users/{BIG}", b"", {}, {404}),
        (t, "GET", f"/tweets/{BIG}", b"", {}, {404}),
        (t, "DELETE", "/tweets/9223372036854775808", b"", {}, {404}),
        (u, "GET", f"/users?ids={BIG}", b"", {}, {400}),
        (u, "GET", f"/users?ids=1,{BIG}", b"", {}, {400}),
        (u, "GET", "/users?ids=" + ",".join(["1"] * 101), b"", {}, {400}),
        (t, "GET", f"/tweets?user_id={BIG}", b"", {}, {400}),
        (t, "POST", "/tweets", b'{"user_id": %d, "content": "x"}' % BIG, JSON, {422}),
        (t, "POST", "/tweets", b'{"user_id": 9223372036854775808, "content": "x"}', JSON, {422}),
        (t, "POST", "/tweets", b'{"user_id": 1e400, "content": "x"}', JSON, {400, 422}),
        (t, "POST", "/tweets", b'{"user_id": -1, "content": "x"}', JSON, {422}),
        (t, "POST", "/tweets", b'{"user_id": "1", "content": "x"}', JSON, {422}),
        (t, "POST", "/tweets", b'{"user_id": true, "content": "x"}', JSON, {422}),
        (t, "POST", "/tweets", b'{"user_id": 1.5, "content": "x"}', JSON, {422}),
        # negative, zero and silly limits and cursors
        *[(svc, "GET", f"{path}?limit={limit}", b"", {}, {400})
          for svc, path in ((u, "/users"), (t, "/tweets"))
          for limit in ("0", "-1", "101", "abc", "1e3", str(BIG), "", "1.5")],
        (t, "GET", "/tweets?cursor=" + "A" * 2000, b"", {}, {400}),
        (t, "GET", "/tweets?cursor=djE6LTE", b"", {}, {400}),  # "v1:-1"
        (t, "GET", "/tweets?expand=everything", b"", {}, {400}),
        # wrong shapes
        (u, "POST", "/users", b"", JSON, {400}),
        (u, "POST", "/users", b"null", JSON, {400, 422}),
        (u, "POST", "/users", b"[]", JSON, {400, 422}),
        (u, "POST", "/users", b'"name"', JSON, {400, 422}),
        (u, "POST", "/users", b'{"name": "x", "admin": true}', JSON, {422}),
        (u, "POST", "/users", b'{"name": "   "}', JSON, {422}),
        (u, "PATCH", f"/users/{user_id}", b'{"name": null}', JSON, {422}),
        (u, "PATCH", f"/users/{user_id}", b'{"id": 5}', JSON, {422}),
        (t, "POST", "/tweets", b'{"user_id": 1, "content": "' + b"x" * 281 + b'"}', JSON, {422}),
        (t, "POST", "/tweets", b'{"user_id": 1, "content": " \\n\\t "}', JSON, {422}),
        (t, "POST", "/tweets", b'{"user_id": 1}', JSON, {422}),
        (u, "PUT", f"/users/{user_id}", b'{"name": "x"}', JSON, {405}),
        (t, "PATCH", f"/tweets/{tweet_id}", b'{"content": "x"}', JSON, {405}),
    ]
    return cases


def _request(port: int, method: str, path: str, body: bytes, headers: dict) -> Result:
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
            f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    data = "\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body
    result = _raw(port, data)
    result.method, result.path = method, path[:80]
    return result


def _snapshot(stack):
    return (stack.query("users", "SELECT id, name, handle FROM users ORDER BY id"),
            stack.query("tweets", "SELECT id, user_id, content FROM tweets ORDER BY id"))


def test_hand_written_bad_input(stack, summary):
    [user_id] = stack.create_users(1)
    tc = stack.tc()
    created = tc.post("/tweets", json={"user_id": user_id, "content": "hello"})
    assert created.status == 201
    before = _snapshot(stack)
    cases = _cases(user_id, created.json()["id"])
    bad = []
    parser_level = 0
    for service, method, path, body, headers, expected in cases:
        port = (stack.users if service == "users" else stack.tweets).port
        r = _request(port, method, path, body, headers)
        if r.status not in expected or not is_problem(r):
            bad.append(r)
    # Refused by gunicorn's HTTP parser before the app sees them: a 4xx, but
    # gunicorn's own small HTML page rather than problem+json (documented in
    # docs/reliability.md).
    for port, data, expected in (
            (stack.tweets.port, b"GET /tweets?cursor=" + b"A" * 5000 + b" HTTP/1.1\r\n\r\n", 414),
            (stack.users.port, b"GET /users/1 HTTP/1.1\r\nX-Request-ID: abc\x7f\x01\r\n\r\n", 400),
            (stack.users.port, b"GET /users/1 HTTP/1.1\r\nX-Request-ID: a\r\n Set-Cookie: evil=1\r\n\r\n", 400),
            (stack.users.port, b"GET /users/1 HTTP/1.1\r\n" + b"X-Big: y\r\n" * 200 + b"\r\n", 431)):
        r = _raw(port, data)
        r.path = data[:40].decode("latin-1")
        parser_level += 1
        if r.status != expected or "set-cookie" in r.headers:
            bad.append(r)
    # Chunked upload over the limit: refused without reading it all.
    chunk = b"a" * 8192
    body = b'{"name": "' + chunk * 12 + b'"}'
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 8192]), body[i:i + 8192])
                       for i in range(0, len(body), 8192)) + b"0\r\n\r\n"
    r = _raw(stack.users.port, b"POST /users HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    r.path = "chunked 96 KiB"
    if r.status not in (400, 413) or not is_problem(r):
        bad.append(r)
    # An X-Request-ID the parser lets through but the service must not echo
    # (over 128 characters, non-ASCII): replaced by a fresh one.
    for forged in (b"r" * 129, "caf\u00e9-\u2028".encode()):
        r = _raw(stack.users.port, b"GET /users/999 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 b"X-Request-ID: " + forged + b"\r\n\r\n")
        r.path = "forged X-Request-ID"
        if r.status != 404 or not is_problem(r) or r.headers.get("x-request-id", "").encode() == forged:
            bad.append(r)
    after = _snapshot(stack)
    server_errors = [r for r in bad if r.status is None or r.status >= 500]
    n = len(cases) + parser_level + 3
    summary("hand-written bad input", n, len(bad), note=f"{n} cases, each 4xx problem+json, data unchanged: "
                                                       f"{before == after}")
    assert not server_errors, describe(server_errors)
    assert not bad, f"{len(bad)} of {n} cases: {describe(bad, 10)}"
    assert before == after, "bad input changed data"


SCHEMATHESIS_SEED = 6061
SCHEMATHESIS_EXAMPLES = 100  # the quick suite (tests/contract) runs 25 in-process
SCHEMATHESIS_SECONDS = 45  # per service; the run stops there even if examples remain


@pytest.mark.parametrize("service", ["users", "tweets"])
def test_schemathesis_against_gunicorn(stack, summary, service, tmp_path):
    """The heavier schemathesis run: real gunicorn over HTTP, fixed seed,
    more examples than the quick in-process suite, all phases but stateful,
    every check but positive_data_acceptance (it expects any string to be a
    valid opaque cursor, a blank-after-trimming name to be valid, and a
    reused Idempotency-Key with another body to succeed: all correctly 4xx).
    One worker: hypothesis' lambda-source parsing is not thread-safe on
    CPython 3.11 (SystemError: AST constructor recursion depth mismatch)."""
    ids = stack.create_users(3)
    tc = stack.tc()
    for i in ids:
        assert tc.post("/tweets", json={"user_id": i, "content": "seed"}).status == 201
    proc = stack.users if service == "users" else stack.tweets
    report = tmp_path / "report.json"
    # A generated body over the 64 KiB limit (e.g. a batch of events far past
    # its maxItems) is rejected with the contract's 413 before it is parsed:
    # a rejection like the others schemathesis expects.
    (tmp_path / "schemathesis.toml").write_text(
        "[checks.negative_data_rejection]\n"
        'expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", '
        '"422", "428", "429", "5xx"]\n')
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{proc.url}/openapi.json",
           "--seed", str(SCHEMATHESIS_SEED), "--max-examples", str(SCHEMATHESIS_EXAMPLES),
           "--checks", "all", "--exclude-checks", "positive_data_acceptance",
           "--phases", "examples,coverage,fuzzing", "--workers", "1",
           "--request-timeout", "10", "--suppress-health-check", "all", "--no-color",
           "--max-time", str(SCHEMATHESIS_SECONDS), "--report", "ndjson", "--report-ndjson-path", str(report)]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "faults.st_hooks",
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    out = run.stdout + run.stderr
    generated = re.search(r"(\d+) generated", out)
    calls = int(generated.group(1)) if generated else 0
    tail = out
    summary(f"schemathesis {service} (seed {SCHEMATHESIS_SEED})", calls, 0 if run.returncode == 0 else 1,
            note=f"{SCHEMATHESIS_EXAMPLES} examples per operation, exit {run.returncode}")
    print(tail)
    assert run.returncode == 0, tail
