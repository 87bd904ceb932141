"""Every error is an RFC 9457 problem, Flask's own included; never a 500."""
import json

import pytest

from contract.api import assert_problem, assert_validation_error, create_user

SERVICES = ["users", "tweets"]


@pytest.mark.parametrize("service", SERVICES)
def test_unknown_route_is_a_404_problem(stack, service):
    assert_problem(getattr(stack, service).get("/no/such/route"), 404)


@pytest.mark.parametrize("service, path, allowed", [
    ("users", "/users/1", {"GET", "PATCH", "DELETE"}),
    ("users", "/users", {"GET", "POST"}),
    ("tweets", "/tweets/1", {"GET", "DELETE"}),
    ("tweets", "/tweets", {"GET", "POST"}),
])
def test_wrong_method_is_a_405_problem_with_allow(stack, service, path, allowed):
    response = getattr(stack, service).put(path, json={})
    assert_problem(response, 405)
    assert allowed <= {method.strip() for method in response.headers["Allow"].split(",")}


@pytest.mark.parametrize("service", SERVICES)
def test_body_over_64_kib_is_a_413_problem(stack, service):
    body = json.dumps({"name": "x" * (64 * 1024)})
    response = getattr(stack, service).post(f"/{service}", data=body, content_type="application/json")
    assert_problem(response, 413)


@pytest.mark.parametrize("service", SERVICES)
def test_body_that_is_not_json_is_a_415_problem(stack, service):
    response = getattr(stack, service).post(f"/{service}", data="name=Ali", content_type="text/plain")
    assert_problem(response, 415)


def test_patch_without_json_is_a_415_problem(stack):
    create_user(stack)
    assert_problem(stack.users.patch("/users/1", data="x", content_type="text/plain"), 415)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("raw", ['{"name": ', "{bad json}", "\xff", "[1, 2"])
def test_malformed_json_is_a_400_problem(stack, service, raw):
    response = getattr(stack, service).post(f"/{service}", data=raw, content_type="application/json")
    assert_problem(response, 400)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("body", [[], [{"name": "Ali"}], "Ali", 42, None])
def test_json_of_the_wrong_shape_is_a_422_problem(stack, service, body):
    response = getattr(stack, service).post(f"/{service}", data=json.dumps(body),
                                            content_type="application/json")
    assert_problem(response, 422)


@pytest.mark.parametrize("resource_id", ["0", "99999999999999999999", "9223372036854775808", "abc", "-1"])
@pytest.mark.parametrize("service, method", [
    ("users", "get"), ("users", "patch"), ("users", "delete"), ("tweets", "get"), ("tweets", "delete"),
])
def test_ids_that_cannot_exist_are_404_for_every_method(stack, service, method, resource_id):
    client = getattr(stack, service)
    assert_problem(getattr(client, method)(f"/{service}/{resource_id}", json={"name": "x"}), 404)


@pytest.mark.parametrize("service", SERVICES)
def test_largest_id_is_a_plain_404(stack, service):
    assert_problem(getattr(stack, service).get(f"/{service}/9223372036854775807"), 404)


def test_validation_errors_name_the_fields(stack):
    body = assert_validation_error(stack.users.post("/users", json={"name": "", "handle": "-"}), "name")
    assert {"name", "handle"} <= {error["field"] for error in body["errors"]}


@pytest.mark.parametrize("service", SERVICES)
def test_bad_query_is_a_400_problem(stack, service):
    assert_validation_error(getattr(stack, service).get(f"/{service}?limit=many"), "limit", status=400)
