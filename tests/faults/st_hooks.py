"""Schemathesis hooks for the heavy run (SCHEMATHESIS_HOOKS=faults.st_hooks).

gunicorn refuses a request line over 4094 bytes with its own 414 page before
the application sees the request; the hand-written bad-input test checks
that case. Generated queries are kept under that size so that schemathesis
tests the application's contract, not the HTTP server's limit."""
from __future__ import annotations

from urllib.parse import urlencode

import schemathesis

MAX_QUERY = 3000


@schemathesis.hook
def filter_query(ctx, query):
    if not query:
        return True
    try:
        return len(urlencode(query, doseq=True)) < MAX_QUERY
    except Exception:
        return True
