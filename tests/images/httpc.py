"""A minimal HTTP client on http.client: one fresh connection per request,
so a refused connection, a reset and a response are told apart exactly."""
from __future__ import annotations

import http.client
import json as _json
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    headers: dict = field(default_factory=dict)
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def json(self):
        return _json.loads(self.body)


def request(method: str, port: int, path: str, json=None, headers: dict | None = None,
            timeout: float = 10.0, host: str = "127.0.0.1") -> Response:
    hdrs = {"Connection": "close", **(headers or {})}
    body = None
    if json is not None:
        body = _json.dumps(json).encode()
        hdrs.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()
