"""The seed's examples keep working: the floor of the contract."""


def test_first_user_then_first_tweet_get_id_1(stack):
    user = stack.users.post("/users", json={"name": "Ali"})
    assert user.status_code == 201
    assert user.json["id"] == 1
    assert user.json["name"] == "Ali"
    assert user.headers["Location"] == "/users/1"

    tweet = stack.tweets.post("/tweets", json={"user_id": 1, "content": "Hello"})
    assert tweet.status_code == 201
    assert tweet.json["id"] == 1
    assert tweet.json["user_id"] == 1
    assert tweet.json["content"] == "Hello"
    assert tweet.headers["Location"] == "/tweets/1"


def test_ids_restart_between_tests(stack):
    assert stack.users.post("/users", json={"name": "Ali"}).json["id"] == 1
