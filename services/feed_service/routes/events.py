"""/internal/events: where the other services' outboxes deliver their events.
Not routed by the Ingress; the NetworkPolicy admits only the producers."""
from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app

from ..schemas import EventBatch

bp = APIBlueprint("events", __name__, tag="Internal")


@bp.post("/internal/events")
@bp.input(EventBatch, arg_name="batch")
@bp.output({}, status_code=204, description="Every event applied (a replayed one changes nothing)")
@bp.doc(responses={422: "A malformed event: none of the batch is applied",
                   503: "The database or the timeline cache is unavailable: send again later"})
def receive_events(batch: EventBatch):
    current_app.extensions["feed_store"].apply_events(batch.events)
    return ""
