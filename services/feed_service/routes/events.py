"""/internal/events: where the other services' outboxes deliver their events.
Not routed by the Ingress; the NetworkPolicy admits only the producers."""
from __future__ import annotations

from flask import current_app

from common.inbox import events_blueprint

from ..schemas import EventBatch


def _apply(events: list) -> None:
    current_app.extensions["store"].apply_events(events)


bp = events_blueprint(EventBatch, _apply,
                      unavailable="The database or the timeline cache is unavailable")
