"""NUL and other control characters through every interface, on SQLite and on PostgreSQL.

Found by probing from outside (issue 10): one chat message holding U+0000 made
PostgreSQL refuse the group commit with an error the broker did not expect, so
the broker loop ended and the whole stack with it. Every edge now refuses such
text with invalid_argument, and the stack keeps serving: the last step of each
test is a normal message, acked and delivered.
"""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import grpc
import psycopg
import pytest

from chat import Api, Person, unique
from chorus.common.grpctls import channel
from chorus.wire.pb import (auth_pb2, auth_pb2_grpc, membership_pb2, membership_pb2_grpc, messages_pb2,
                       messages_pb2_grpc)
from conftest import _libpq_url, _with_search_path, running_stack
from generic_grpc import backend_tls

GRPC_TIMEOUT_SECS = 5


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_stack(request, tmp_path_factory):
    """The whole stack as `chorus up` runs it, on SQLite files or on one PostgreSQL schema."""
    if request.param == "sqlite":
        yield request.getfixturevalue("stack")
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"chorus_ctl_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq_url(url), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        with running_stack(tmp_path_factory.mktemp("pgstack"),
                           {"DATABASE_URL": _with_search_path(url, schema),
                            "CHORUS_REGISTRATIONS_PER_IP": "1000000"}) as stack:
            yield stack
    finally:
        with psycopg.connect(_libpq_url(url), autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
async def api_of(any_stack):
    async with aiohttp.ClientSession() as http:
        yield Api(http, any_stack.base_url)


async def _two_members(api: Api, stack) -> tuple[Person, Person, dict]:
    alice = await Person.register(api, stack.ws_url, "alice")
    bob = await Person.register(api, stack.ws_url, "bob")
    group = await alice.create_group()
    await bob.join(group)
    return alice, bob, group


def _grpc_code(call, request) -> grpc.StatusCode:
    try:
        call(request, timeout=GRPC_TIMEOUT_SECS)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_a_websocket_message_with_nul_is_refused_and_the_group_keeps_flowing(any_stack, api_of):
    alice, bob, group = await _two_members(api_of, any_stack)
    sender, reader = await alice.open_page(), await bob.open_page()
    for bad in ("a\u0000b", "\u0000", "red \x1b[31malert", "bell\x07", "del\x7f"):
        ref = await sender.post(group, bad)
        error = await sender.expect("error", ref=ref)
        assert error["code"] == "invalid_argument" and "control character" in error["message"], error
    ack = await sender.post_and_ack(group, "line one\n\tline two")
    frame = await reader.expect("message", group=group["id"])
    assert (frame["seq"], frame["text"]) == (ack["seq"], "line one\n\tline two")
    assert ack["seq"] == 1  # nothing refused was stored
    await sender.close()
    await reader.close()


async def test_http_fields_with_nul_are_refused_not_failed(any_stack, api_of):
    alice, _bob, group = await _two_members(api_of, any_stack)
    cases = [
        ("POST", "/api/register", {"username": "a\u0000b", "password": "correct horse battery"}, None),
        ("POST", "/api/register", {"username": unique("c"), "password": "correct horse battery",
                                   "display_name": "Eve\u0000"}, None),
        ("POST", "/api/login", {"username": "a\u0000b", "password": "whatever"}, None),
        ("POST", "/api/login", {"username": alice.username + "\u0000", "password": alice.password}, None),
        ("POST", "/api/groups", {"name": "ops\u0000room"}, alice.token),
    ]
    for method, path, body, token in cases:
        status, answer = await api_of.call(method, path, json=body, token=token)
        assert status == 400 and answer["error"]["code"] == "invalid_argument", (path, body, status, answer)
        assert "control character" in answer["error"]["message"], answer
    status, _ = await api_of.call("GET", "/api/groups/g%00x/messages", token=alice.token)
    assert status in (400, 404), status
    # the owner still logs in, and the group is still there
    status, _ = await api_of.call("POST", "/api/login", json={"username": alice.username,
                                                              "password": alice.password})
    assert status == 200
    assert await api_of.ok("GET", f"/api/groups/{group['id']}/messages", token=alice.token) is not None


async def test_grpc_requests_with_nul_are_invalid_argument_and_every_service_keeps_serving(any_stack, api_of):
    alice, bob, group = await _two_members(api_of, any_stack)
    reader = await bob.open_page()
    ports = any_stack.ports

    def calls() -> list[tuple[str, grpc.StatusCode]]:
        tls = backend_tls(any_stack.keys)
        with channel(f"127.0.0.1:{ports['auth']}", tls) as auth_channel, \
             channel(f"127.0.0.1:{ports['membership']}", tls) as membership_channel, \
             channel(f"127.0.0.1:{ports['broker-grpc']}", tls) as messages_channel:
            auth = auth_pb2_grpc.AuthStub(auth_channel)
            membership = membership_pb2_grpc.MembershipStub(membership_channel)
            messages = messages_pb2_grpc.MessagesStub(messages_channel)
            return [
                ("Login", _grpc_code(auth.Login, auth_pb2.LoginRequest(username="x\u0000", password="p"))),
                ("Register", _grpc_code(auth.Register, auth_pb2.RegisterRequest(
                    username="x\u0000yz", password="correct horse battery"))),
                ("GetAccounts", _grpc_code(auth.GetAccounts, auth_pb2.GetAccountsRequest(ids=["u\u0000"]))),
                ("ResolveExternalAccount", _grpc_code(auth.ResolveExternalAccount, auth_pb2.ResolveExternalAccountRequest(
                    issuer="site", subject="u\u0000"))),
                ("CreateGroup", _grpc_code(membership.CreateGroup, membership_pb2.CreateGroupRequest(
                    owner_id=alice.user["id"], name="n\u0000"))),
                ("JoinGroup", _grpc_code(membership.JoinGroup, membership_pb2.JoinGroupRequest(
                    group_id=group["id"], account_id="u\u0000"))),
                ("PostMessage text", _grpc_code(messages.PostMessage, messages_pb2.PostMessageRequest(
                    group_id=group["id"], sender_name="Bot", text="a\u0000b"))),
                ("PostMessage sender", _grpc_code(messages.PostMessage, messages_pb2.PostMessageRequest(
                    group_id=group["id"], sender_name="B\u0000t", text="hello"))),
                ("ListMessages", _grpc_code(messages.ListMessages, messages_pb2.ListMessagesRequest(
                    group_id="g\u0000"))),
            ]

    results = await asyncio.to_thread(calls)
    assert {name: code for name, code in results} == {
        name: grpc.StatusCode.INVALID_ARGUMENT for name, _ in results}
    sender = await alice.open_page()
    ack = await sender.post_and_ack(group, "after all that")
    assert (await reader.expect("message", group=group["id"]))["seq"] == ack["seq"] == 1
    await sender.close()
    await reader.close()
