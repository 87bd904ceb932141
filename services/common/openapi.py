"""Completes the OpenAPI document APIFlask generates from the routes and
their Pydantic models with what every route shares: problem-details errors,
the request-id header and, on POSTs, Idempotency-Key."""
from __future__ import annotations

from .db import MAX_ID

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

_REQUEST_ID = {"schema": {"type": "string"}, "description": "Echo of the caller's id, or a new one."}
_RETRY_AFTER = {"schema": {"type": "string"}, "description": "Seconds to wait before retrying."}

_DESCRIPTIONS = {
    400: "Malformed request: query, path or body",
    404: "No such resource",
    409: "Conflict",
    413: "Body over 64 KiB",
    415: "Body is not JSON",
    422: "Well-formed but invalid",
    503: "A dependency is unavailable",
}


def _statuses(method: str, path: str, operation: dict) -> set[int]:
    """The errors an operation can answer whatever it does, from its inputs;
    each route declares its own on top (404, 409, ...)."""
    statuses = {503}  # its database (or another dependency) is down
    if any(parameter["in"] == "query" for parameter in operation.get("parameters", [])):
        statuses.add(400)  # an invalid query parameter
    if "requestBody" in operation:
        statuses |= {400, 413, 415, 422}  # not JSON, too large, not JSON at all, invalid
    if method == "post" and not path.startswith("/internal/"):
        statuses |= {400, 409, 422}  # Idempotency-Key: malformed, in use, reused
    return statuses


def _problem_response(status: int, description: str | None) -> dict:
    response = {
        "description": description or _DESCRIPTIONS.get(status, "Error"),
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        "headers": {"X-Request-ID": _REQUEST_ID},
    }
    if status == 503:
        response["headers"]["Retry-After"] = _RETRY_AFTER
    return response


def add_problem_responses(spec: dict) -> dict:
    spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for schema in ("HTTPError", "ValidationError"):
        spec["components"]["schemas"].pop(schema, None)
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            statuses = _statuses(method, path, operation)
            statuses |= {int(code) for code in responses if code[0] in "45"}
            if path in ("/healthz", "/metrics", "/openapi.json", "/docs"):
                statuses = set()
            for status in statuses:
                described = responses.get(str(status), {}).get("description")
                responses[str(status)] = _problem_response(status, described)
            for code, response in responses.items():
                response.setdefault("headers", {})["X-Request-ID"] = _REQUEST_ID
            if "requestBody" in operation:
                # A body-taking route answers 415 when the body is missing.
                operation["requestBody"]["required"] = True
            parameters = operation.setdefault("parameters", [])
            for parameter in parameters:
                if parameter["in"] == "path":  # every path parameter is an <id:...>
                    parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
                elif parameter["schema"].get("type") == "array":  # a list in the query: 1,2,3
                    parameter.update(style="form", explode=False)
            # Any value is accepted: an invalid one is replaced, not rejected.
            parameters.append({"name": "X-Request-ID", "in": "header", "required": False,
                               "schema": {"type": "string"},
                               "description": "Kept if up to 128 printable ASCII characters, "
                                              "otherwise replaced by a new id."})
            # /internal/events is idempotent by event id (common.inbox) instead.
            if method == "post" and not path.startswith("/internal/"):
                parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                                   "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                                              "pattern": "^[\\x21-\\x7e]+$"},
                                   "description": "Replays the first response for a repeated request."})
    return spec
