"""Putting the services' storage back to empty between tests."""
from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine


def empty_tables(engine: Engine, tables) -> None:
    """Empty the tables (those that exist) and restart their ids at 1."""
    present = set(inspect(engine).get_table_names())
    tables = [table for table in tables if table in present]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
            return
        for table in tables:
            connection.execute(text(f"DELETE FROM {table}"))
        connection.execute(text("DELETE FROM sqlite_sequence"))  # ids restart at 1


def flush_redis(url: str) -> None:
    """Flush the Redis database, and the user service workers' near caches."""
    import redis

    from user_service.cache import CHANNEL
    from user_service.near_cache import DROP_ALL

    with redis.Redis.from_url(url) as client:
        client.flushdb()
        client.publish(CHANNEL, DROP_ALL)  # and every worker's own copy,
        client.ping()  # delivered once this answers (see UserCache.invalidate)
