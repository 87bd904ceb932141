"""Request validation: what is accepted, and the 422/409 for what is not."""
import pytest

from contract.api import assert_problem, assert_validation_error, create_tweet, create_user


def test_user_name_is_trimmed(stack):
    assert create_user(stack, "  Ali  ")["name"] == "Ali"


@pytest.mark.parametrize("name", ["A", "x" * 50, "  " + "x" * 50 + "  "])
def test_user_name_of_1_to_50_characters_after_trimming(stack, name):
    assert create_user(stack, name)["name"] == name.strip()


@pytest.mark.parametrize("name", ["", "   ", "x" * 51, None, 7])
def test_user_name_outside_1_to_50_characters_is_422(stack, name):
    assert_validation_error(stack.users.post("/users", json={"name": name}), "name")
    assert stack.user_count() == 0


def test_user_name_is_required(stack):
    assert_validation_error(stack.users.post("/users", json={"handle": "ali"}), "name")


@pytest.mark.parametrize("handle", ["a", "Ali_01", "x" * 15])
def test_valid_handles(stack, handle):
    assert create_user(stack, handle=handle)["handle"] == handle


def test_handle_is_optional_and_null_without_one(stack):
    assert create_user(stack)["handle"] is None


@pytest.mark.parametrize("handle", ["", "x" * 16, "ali-x", "ali x", "çà", 5])
def test_invalid_handles_are_422(stack, handle):
    response = stack.users.post("/users", json={"name": "Ali", "handle": handle})
    assert_validation_error(response, "handle")


def test_taken_handle_is_409_whatever_the_case(stack):
    create_user(stack, "Ali", handle="ali")
    assert_problem(stack.users.post("/users", json={"name": "Other", "handle": "ALI"}), 409)
    assert stack.user_count() == 1


def test_patch_to_a_taken_handle_is_409(stack):
    create_user(stack, "Ali", handle="ali")
    create_user(stack, "Bea", handle="bea")
    assert_problem(stack.users.patch("/users/2", json={"handle": "Ali"}), 409)
    assert stack.users.get("/users/2").json["handle"] == "bea"


@pytest.mark.parametrize("post", ["users", "tweets"])
def test_unknown_fields_are_422(stack, post):
    create_user(stack)
    body = {"name": "Ali", "admin": True} if post == "users" else \
        {"user_id": 1, "content": "hi", "admin": True}
    assert_validation_error(getattr(stack, post).post(f"/{post}", json=body), "admin")


@pytest.mark.parametrize("content", [
    "x",
    "x" * 280,
    "😀" * 280,  # astral code points count one each, not two UTF-16 units
    "  padded  ",
])
def test_tweet_content_of_1_to_280_code_points(stack, content):
    create_user(stack)
    assert create_tweet(stack, 1, content)["content"] == content


@pytest.mark.parametrize("content", ["", " ", " \n\t ", "x" * 281, "😀" * 281, None, 5])
def test_tweet_content_empty_blank_or_too_long_is_422(stack, content):
    create_user(stack)
    response = stack.tweets.post("/tweets", json={"user_id": 1, "content": content})
    assert_validation_error(response, "content")
    assert stack.tweet_count() == 0


@pytest.mark.parametrize("user_id", [0, -1, 1.5, "1", True, None, [1], 2**63])
def test_user_id_must_be_a_positive_integer(stack, user_id):
    create_user(stack)
    response = stack.tweets.post("/tweets", json={"user_id": user_id, "content": "hi"})
    assert_validation_error(response, "user_id")
    assert stack.tweet_count() == 0


def test_tweet_of_an_unknown_user_is_422(stack):
    create_user(stack)
    response = stack.tweets.post("/tweets", json={"user_id": 2, "content": "hi"})
    assert_validation_error(response, "user_id")
    assert stack.tweet_count() == 0


def test_patch_validates_like_post(stack):
    create_user(stack)
    assert_validation_error(stack.users.patch("/users/1", json={"name": " "}), "name")
    assert_validation_error(stack.users.patch("/users/1", json={"name": None}), "name")
    assert_validation_error(stack.users.patch("/users/1", json={"handle": "no-dash"}), "handle")
    assert_validation_error(stack.users.patch("/users/1", json={"id": 5}), "id")
    assert stack.users.get("/users/1").json["name"] == "Ali"
