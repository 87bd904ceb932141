"""Test infrastructure shared by every suite: real PostgreSQL, Redis and
gunicorn processes (no mocks). See servers.py."""
