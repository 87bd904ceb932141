"""Small helpers the contract tests share: creating things, and checking
the shapes the contract promises."""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from prometheus_client.parser import text_string_to_metric_families

PROBLEM_JSON = "application/problem+json"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def create_user(stack, name: str = "Ali", handle: str | None = None) -> dict:
    body = {"name": name} if handle is None else {"name": name, "handle": handle}
    response = stack.users.post("/users", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json


def create_tweet(stack, user_id: int = 1, content: str = "Hello") -> dict:
    response = stack.tweets.post("/tweets", json={"user_id": user_id, "content": content})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json


def assert_problem(response, status: int, type: str | None = None) -> dict:
    """An RFC 9457 problem with `status`; returns its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body = response.json if hasattr(response, "get_data") else response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    if type is not None:
        assert body["type"] == type
    return body


def assert_validation_error(response, field: str, status: int = 422) -> dict:
    body = assert_problem(response, status)
    assert field in [error["field"] for error in body["errors"]], body
    assert all(error["message"] for error in body["errors"])
    return body


def assert_recent_utc_timestamp(value: str) -> None:
    assert RFC3339_UTC.fullmatch(value), value
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert abs((datetime.now(timezone.utc) - moment).total_seconds()) < 60


def metric(text: str, sample: str, **labels) -> float:
    """The sum of the samples named `sample` whose labels include `labels`,
    in a Prometheus text exposition (0 if there are none)."""
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))


def wait_until(condition, timeout: float = 5.0, interval: float = 0.02):
    """Poll condition() until truthy (for log lines written after the response)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {condition}")
        time.sleep(interval)
    return result
