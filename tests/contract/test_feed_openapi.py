"""The feed service against its own /openapi.json, as the other two are
tested in test_schemathesis.py: every operation, valid and invalid
requests, every default check. The app runs in-process on the PostgreSQL
stack's feed database and calls the stack's gunicorn user and tweet services."""
from __future__ import annotations

import pytest
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

import feed_service
from feed_service.settings import FeedSettings
from contract import test_schemathesis as fuzzing

# Rules a schema of separate query or path parameters cannot state: exactly
# one of follower_id and followee_id; a follower other than the followee.
RULES_ACROSS_PARAMETERS = {"urn:chirp:problem:self-follow"}


def _rejected_by_a_rule(case, response) -> bool:
    if response.status_code not in (400, 422):
        return False
    problem = response.json()
    fields = [error["field"] for error in problem.get("errors", [])]
    return problem.get("type") in RULES_ACROSS_PARAMETERS or (
        case.path == "/follows" and fields == ["_schema"])


@pytest.fixture
def feed_app(feed_postgres_stack):
    stack = feed_postgres_stack
    stack.reset()
    app = feed_service.create_app(FeedSettings(
        database_url=stack.db_urls["feed_service"], redis_url=stack.redis_url,
        user_service_url=stack.url("user_service"), tweet_service_url=stack.url("tweet_service")))
    users = [stack.create_user(name) for name in ("Ali", "Bea", "Cem")]
    stack.follow(users[0], users[1])
    stack.tweet(users[1], "hi")
    yield app
    app.extensions["store"].close()


def test_feed_service_matches_its_openapi(feed_app, subtests, monkeypatch):
    rejected_for_state = fuzzing._rejected_for_state

    def call_and_validate(case) -> None:
        response = case.call()
        if response.status_code == 413:
            # A generated batch over 64 KiB: refused for its size, whatever is in it
            # (a status schemathesis counts as neither acceptance nor rejection).
            case.validate_response(response, excluded_checks=[negative_data_rejection,
                                                              positive_data_acceptance])
        elif case.meta.generation.mode.is_positive and (
                rejected_for_state(case, response) or _rejected_by_a_rule(case, response)):
            case.validate_response(response, excluded_checks=[positive_data_acceptance])
        else:
            case.validate_response(response)

    monkeypatch.setattr(fuzzing, "_call_and_validate", call_and_validate)
    fuzzing._fuzz_every_operation(fuzzing._schema(feed_app), subtests)
