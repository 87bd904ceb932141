"""Session-wide real servers shared by every suite.

Suite-specific fixtures (databases, running services) live in
tests/<suite>/conftest.py and build on these two.
"""

import pytest

from support import servers


def _running(factory):
    """Start the server from factory() for the whole session, stop it at the end."""
    try:
        server = factory()
    except servers.ServerUnavailable as exc:
        # Missing software is a setup problem: show the install hint, not a traceback.
        pytest.fail(str(exc), pytrace=False)
    with server:
        yield server


@pytest.fixture(scope="session")
def postgres():
    """A running PostgreSQL (private, or TEST_DATABASE_URL's).
    postgres.create_database(name) returns the SQLAlchemy URL of a fresh database."""
    yield from _running(servers.postgres_server)


@pytest.fixture(scope="session")
def redis_server():
    """A running Redis (private, or TEST_REDIS_URL's): .url, .client()."""
    yield from _running(servers.redis_server)
