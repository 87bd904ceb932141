"""RFC 9457 problem details for every error a service returns.

Views raise `Problem(...)`; Flask's own HTTP errors (404, 405, 413, bad
JSON...), APIFlask validation errors and database outages are turned into the
same `application/problem+json` shape here, so no error escapes as HTML or as
a bare 500.
"""
from __future__ import annotations

import logging

from apiflask import APIFlask
from apiflask.exceptions import HTTPError
from flask import Response, current_app, json
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


def status_title(status: int) -> str:
    """The status's reason phrase, by RFC 9110's names."""
    return _RFC9110_TITLES.get(status) or HTTP_STATUS_CODES.get(status, "Error")


_RFC9110_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


class Problem(HTTPError):
    """An error response. `type` names the kind of problem; `about:blank`
    means the HTTP status says it all (RFC 9457, section 4.2.1)."""

    def __init__(self, status: int, detail: str, *, type: str = "about:blank",
                 errors: list[dict] | None = None, headers: dict | None = None):
        super().__init__(status, message=status_title(status), detail=detail, headers=headers)
        self.type = type
        self.errors = errors


class DependencyUnavailable(Problem):
    """503: something this service needs is down. Callers may retry later."""

    def __init__(self, detail: str):
        super().__init__(503, detail, type="urn:chirp:problem:dependency-unavailable")


def database_unavailable() -> DependencyUnavailable:
    return DependencyUnavailable("The database is unavailable.")


def problem_response(status: int, detail: str, *, type: str = "about:blank",
                     errors: list[dict] | None = None, headers: dict | None = None) -> Response:
    body = {"type": type, "title": status_title(status), "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    if status == 503:
        response.headers["Retry-After"] = str(current_app.extensions["settings"].retry_after_seconds)
    for name, value in (headers or {}).items():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _validation_problem(error: HTTPError) -> Response:
    # APIFlask reports {location: {field: [messages]}}. A bad query string or
    # path is a malformed request (400); a well-formed body that breaks the
    # rules is unprocessable (422).
    errors, status = [], 422
    for location, fields in (error.detail or {}).items():
        if location != "json":
            status = 400
        for field, messages in fields.items():
            for message in messages:
                errors.append({"field": field, "message": message})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "Invalid request."
    return problem_response(status, detail, type="urn:chirp:problem:validation-error",
                            errors=errors)


def _http_error(error: HTTPError) -> Response:
    if isinstance(error, Problem):
        return problem_response(error.status_code, error.detail, type=error.type,
                                errors=error.errors, headers=error.headers)
    if isinstance(error.detail, dict) and error.status_code in (400, 422):
        return _validation_problem(error)
    return problem_response(error.status_code, str(error.detail or error.message),
                            headers=error.headers)


def _werkzeug_error(error: HTTPException) -> Response:
    headers = dict(error.get_headers())  # keeps e.g. `Allow` on a 405
    return problem_response(error.code or 500, error.description or error.name, headers=headers)


def _database_error(error: DBAPIError | PoolTimeoutError) -> Response:
    # Lost or refused connections and pool exhaustion are outages, not bugs.
    if isinstance(error, DBAPIError) and not (
        isinstance(error, OperationalError) or error.connection_invalidated
    ):
        return _unexpected_error(error)
    log.warning("database unavailable: %s", error.__class__.__name__)
    return _http_error(database_unavailable())


def _unexpected_error(error: Exception) -> Response:
    log.exception("unhandled error")
    return problem_response(500, "An unexpected error occurred.")


def init_app(app: APIFlask) -> None:
    app.error_processor(_http_error)
    # Registered after APIFlask's own, so these replace its handlers.
    app.register_error_handler(HTTPException, _werkzeug_error)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(PoolTimeoutError, _database_error)
    app.register_error_handler(Exception, _unexpected_error)
