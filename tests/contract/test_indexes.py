"""Every list query is an index range scan: no sequential scan, no sort,
however many rows the tables hold. Checked on the statements the apps really
run, with PostgreSQL's EXPLAIN over a table large enough for the planner to care."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import event, text


@pytest.fixture
def many_rows(postgres_stack):
    with postgres_stack.tweet_db().begin() as db:
        db.execute(text("INSERT INTO tweets (user_id, content, created_at) "
                        "SELECT n % 500 + 1, 'tweet ' || n, now() FROM generate_series(1, 50000) n"))
        db.execute(text("ANALYZE tweets"))
    with postgres_stack.user_db().begin() as db:
        db.execute(text("INSERT INTO users (name, created_at) "
                        "SELECT 'user ' || n, now() FROM generate_series(1, 20000) n"))
        db.execute(text("ANALYZE users"))
    return postgres_stack


def _statements_run_by(app, request):
    """The SELECTs an app sends to its database while serving `request`."""
    seen = []
    database = app.extensions["store"].db
    engines = [database.engine, database.autocommit_engine]

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "FROM" in statement.upper():
            seen.append((statement, parameters))

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        assert request().status_code == 200
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
    return seen


def _plan_nodes(engine, statement, parameters) -> list[dict]:
    with engine.connect() as connection:
        cursor = connection.connection.cursor()
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    nodes, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    return nodes


@pytest.mark.parametrize("path, index", [
    ("/tweets?user_id=7", "ix_tweets_user_id_id"),
    ("/tweets?user_id=7&cursor={cursor}", "ix_tweets_user_id_id"),
    ("/tweets", "tweets_pkey"),
    ("/tweets?cursor={cursor}", "tweets_pkey"),
])
def test_tweet_lists_are_index_range_scans(many_rows, path, index):
    stack = many_rows
    first = stack.tweets.get(path.split("&cursor")[0].split("?cursor")[0])
    url = path.format(cursor=first.json["next_cursor"])
    statements = _statements_run_by(stack.tweet_app, lambda: stack.tweets.get(url))
    [(statement, parameters)] = [s for s in statements if "FROM tweets" in s[0]]
    nodes = _plan_nodes(stack.tweet_db(), statement, parameters)
    kinds = {node["Node Type"] for node in nodes}
    assert "Seq Scan" not in kinds and "Sort" not in kinds, kinds
    assert any(node.get("Index Name") == index for node in nodes), nodes


def test_user_pages_are_index_range_scans(many_rows):
    stack = many_rows
    cursor = stack.users.get("/users").json["next_cursor"]
    statements = _statements_run_by(stack.user_app, lambda: stack.users.get(f"/users?cursor={cursor}"))
    [(statement, parameters)] = [s for s in statements if "FROM users" in s[0]]
    nodes = _plan_nodes(stack.user_db(), statement, parameters)
    kinds = {node["Node Type"] for node in nodes}
    assert "Seq Scan" not in kinds and "Sort" not in kinds, kinds
    assert any(node.get("Index Name") == "users_pkey" for node in nodes), nodes
