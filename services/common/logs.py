"""JSON log lines (python-json-logger), each naming the service and the
request it belongs to."""
from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from .request_id import current_request_id


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


def configure(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(
        "{levelname}{name}{request_id}{message}", style="{", timestamp="time",
        rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
        static_fields={"service": service}))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
