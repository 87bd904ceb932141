"""Pieces both Chirp services are built from: settings, the database's pools,
errors, idempotency, pagination, the outbox, request ids, logs and metrics."""
