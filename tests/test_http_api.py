"""The HTTP API's answers, good and bad, against the real stack."""

from __future__ import annotations


from chat import Person, unique


async def test_register_login_me(api, stack):
    name = unique("dora")
    status, body = await api.call("POST", "/api/register",
                                  json={"username": name, "password": "long enough pw"})
    assert status == 201
    assert body["user"]["username"] == name and body["user"]["display_name"] == name
    status, body = await api.call("POST", "/api/login", json={"username": name, "password": "long enough pw"})
    assert status == 200 and body["token"] and body["user"]["username"] == name
    status, me = await api.call("GET", "/api/me", token=body["token"])
    assert status == 200 and me == {"user": body["user"], "groups": []}


async def test_groups_directory_create_join_leave(api, stack):
    alice = await Person.register(api, stack.ws_url, "alice")
    bob = await Person.register(api, stack.ws_url, "bob")
    group = await alice.create_group(unique("Book club "))
    status, body = await api.call("GET", "/api/groups", token=bob.token)
    [entry] = [g for g in body["groups"] if g["id"] == group["id"]]
    assert entry == {**group, "member_count": 1, "joined": False}
    assert await bob.join(group) == group
    status, body = await api.call("GET", "/api/me", token=bob.token)
    assert body["groups"] == [{**group, "last_seq": 0, "unread": 0}]
    status, body = await api.call("GET", "/api/groups", token=bob.token)
    [entry] = [g for g in body["groups"] if g["id"] == group["id"]]
    assert entry["member_count"] == 2 and entry["joined"] is True
    assert await bob.leave(group) == group
    status, body = await api.call("GET", "/api/me", token=bob.token)
    assert body["groups"] == []


async def test_errors_have_the_right_status_code_and_a_message(api, stack):
    alice = await Person.register(api, stack.ws_url, "alice")
    cases = [
        (("POST", "/api/register", {"data": b"{not json"}), 400, "bad_json"),
        (("POST", "/api/register", {"json": ["a list"]}), 400, "bad_json"),
        (("POST", "/api/register", {"json": {"username": "x"}}), 400, "invalid_argument"),
        (("POST", "/api/register", {"json": {"username": 5, "password": "long enough pw"}}), 400,
         "invalid_argument"),
        (("POST", "/api/register", {"json": {"username": "no spaces!", "password": "long enough pw"}}),
         400, "invalid_argument"),
        (("POST", "/api/register", {"json": {"username": unique("shorty"), "password": "short"}}),
         400, "invalid_argument"),
        (("POST", "/api/register", {"json": {"username": alice.username.upper(), "password": "long enough pw"}}),
         409, "already_exists"),
        (("POST", "/api/login", {"json": {"username": alice.username, "password": "wrong password"}}),
         401, "unauthenticated"),
        (("POST", "/api/login", {"json": {"username": unique("nobody"), "password": "wrong password"}}),
         401, "unauthenticated"),
        (("GET", "/api/me", {}), 401, "unauthenticated"),
        (("GET", "/api/me", {"token": "garbage"}), 401, "unauthenticated"),
        (("GET", "/api/me", {"headers": {"Authorization": "Basic abc"}}), 401, "unauthenticated"),
        (("POST", "/api/groups", {"token": alice.token, "json": {"name": ""}}), 400, "invalid_argument"),
        (("POST", "/api/groups", {"token": alice.token, "json": {"name": "x" * 65}}), 400, "invalid_argument"),
        (("POST", "/api/groups/g_nope/join", {"token": alice.token}), 404, "not_found"),
        (("POST", "/api/groups/g_nope/leave", {"token": alice.token}), 404, "not_found"),
        (("POST", "/api/groups/" + "x" * 100 + "/join", {"token": alice.token}), 404, "not_found"),
        (("GET", "/api/nothing-here", {}), 404, "not_found"),
        (("POST", "/api/register", {"data": b"{" + b" " * 70_000 + b"}"}), 413, "too_large"),
    ]
    for (method, path, kwargs), status, code in cases:
        got_status, body = await api.call(method, path, **kwargs)
        assert (got_status, body["error"]["code"]) == (status, code), (method, path, kwargs, body)
        assert body["error"]["message"], body


async def test_duplicate_group_name_is_a_conflict(api, stack):
    alice = await Person.register(api, stack.ws_url, "alice")
    name = unique("Dupes ")
    await alice.create_group(name)
    status, body = await api.call("POST", "/api/groups", token=alice.token, json={"name": name.lower()})
    assert status == 409 and body["error"]["code"] == "already_exists"


async def test_the_page_is_served(api, stack):
    for path, kind in (("/", "text/html"), ("/main.js", "text/javascript"), ("/app.css", "text/css")):
        async with api.http.get(stack.base_url + path) as response:
            assert response.status == 200 and response.content_type == kind
            assert len(await response.read()) > 100
