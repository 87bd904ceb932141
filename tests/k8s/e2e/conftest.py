"""Contract smoke tests through the Ingress of a deployed release (`make e2e`).

CHIRP_E2E_URL: base URL of the Ingress (kind: http://127.0.0.1,
minikube: http://$(minikube ip)); CHIRP_E2E_HOST: the Ingress host.
Standard library only. Not part of `make test-k8s` (needs a cluster).
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest

BASE = os.environ.get("CHIRP_E2E_URL", "http://127.0.0.1").rstrip("/")
HOST = os.environ.get("CHIRP_E2E_HOST", "chirp.localhost")


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.raw = status, headers, body

    def json(self):
        return json.loads(self.raw)


def call(method: str, path: str, body=None, headers=None, timeout=15) -> Response:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Host", HOST)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.headers, e.read())


@pytest.fixture(scope="session", autouse=True)
def ingress_ready():
    """Wait (bounded) until both prefixes answer through the Ingress."""
    deadline = time.monotonic() + 180
    last = None
    while time.monotonic() < deadline:
        try:
            u, t = call("GET", "/users?limit=1"), call("GET", "/tweets?limit=1")
            if u.status == 200 and t.status == 200:
                return
            last = (u.status, t.status)
        except OSError as e:
            last = e
        time.sleep(3)
    pytest.fail(f"Ingress at {BASE} (Host {HOST}) not serving: {last}")
