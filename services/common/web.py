"""The application factory pieces every service shares."""
from __future__ import annotations

from apiflask import APIFlask
from flask import Request, current_app, request
from pydantic import BaseModel
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter, ValidationError

from . import logs, metrics, problems, request_id
from .db import MAX_ID, Database
from .jsonio import OrjsonProvider
from .openapi import add_problem_responses
from .problems import Problem
from .settings import ServiceSettings

_BODY_METHODS = {"POST", "PUT", "PATCH"}


class JsonRequest(Request):
    def on_json_loading_failed(self, e: ValueError | None):
        raise Problem(400, f"The body is not valid JSON: {e}.")


class IdConverter(IntegerConverter):
    """`<id:name>`: a database id, 1 to 2^63-1; anything else is a 404."""

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=MAX_ID)

    def to_python(self, value: str) -> int:
        try:
            return super().to_python(value)
        except ValidationError:
            # Not a ValidationError: with it werkzeug answers 405 when the
            # path also matched the rule of another method (DELETE /users/0).
            raise NotFound() from None


def _takes_body() -> bool:
    """Whether the matched view declares a request body (PUT /follows/... does not)."""
    view = current_app.view_functions.get(request.endpoint)
    return "body" in getattr(view, "_spec", {})


def _require_json_object_body() -> None:
    # Routing errors (404, 405) come first; they are raised after this hook.
    if (request.routing_exception is not None or request.method not in _BODY_METHODS
            or not _takes_body()):
        return
    if not request.is_json:
        raise Problem(415, "The request body must be JSON (Content-Type: application/json).")
    # APIFlask reads a JSON `null` body as {}: a PATCH of `null` would be a
    # silent no-op 200. Every body here is an object; say so.
    if request.get_json() is None:
        raise Problem(422, "The request body must be a JSON object, not null.",
                      type="urn:chirp:problem:validation-error",
                      errors=[{"field": "body", "message": "must be an object"}])


def healthz() -> dict:
    """Alive: the process can serve. Touches no dependency."""
    return {"status": "ok"}


def readyz():
    """Ready: the service's own database answers."""
    try:
        current_app.extensions["database"].ping()
    except Exception:
        raise problems.database_unavailable() from None
    return {"status": "ok"}


class ChirpFlask(APIFlask):
    def __init__(self, *args, **kwargs):
        self._sync_functions: dict = {}
        super().__init__(*args, **kwargs)

    def ensure_sync(self, func):
        # Flask asks this of every hook and view on every request (eight
        # times for a GET here), and each answer costs an inspect coroutine
        # check. A function's answer never changes: remember it.
        try:
            return self._sync_functions[func]
        except KeyError:
            sync = self._sync_functions[func] = super().ensure_sync(func)
            return sync


def create_base_app(import_name: str, title: str, settings: ServiceSettings,
                    database: Database) -> APIFlask:
    app = ChirpFlask(import_name, title=title, version="1.0.0", docs_path="/docs")
    app.json = OrjsonProvider(app)
    app.request_class = JsonRequest
    app.url_map.converters["id"] = IdConverter
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.config["VALIDATION_ERROR_STATUS_CODE"] = 422
    app.config["AUTO_SERVERS"] = False  # clients use the address they reached us at
    app.extensions["settings"] = settings
    app.extensions["database"] = database
    app.extensions["db_engine"] = database.engine  # the schema gate's (common.migrations)
    logs.configure(settings.service_name, settings.log_level)

    request_id.init_app(app)
    metrics.init_app(app)
    problems.init_app(app)
    app.before_request(_require_json_object_body)
    app.spec_processor(add_problem_responses)

    _add_operational_routes(app)
    return app


class Status(BaseModel):
    status: str


def _add_operational_routes(app: APIFlask) -> None:
    app.get("/healthz")(app.output(Status, description="The process can serve")(
        app.doc(tags=["Operations"])(healthz)))
    app.get("/readyz")(app.output(Status, description="The database answers")(
        app.doc(tags=["Operations"], responses={503: "The database is unavailable"})(readyz)))
    prometheus_text = {"text/plain": {"schema": {"type": "string"}}}
    app.get("/metrics")(app.doc(tags=["Operations"], responses={
        200: {"description": "Prometheus text format, summed over workers",
              "content": prometheus_text}})(metrics.metrics_view))
