"""Pieces both Chirp services are built from: config, database, errors,
request ids, logging, metrics, idempotency and pagination."""
