"""Who may call what: every HTTP route, WebSocket op and gRPC method, table-driven.

Callers of the person-facing interfaces (HTTP, WebSocket):

    owner        created the group (and is a member)
    member       joined the group
    non-member   a logged-in person outside the group
    left         was a member, then left
    logged out   no token at all
    expired      a token past its exp (signed with the stack's real key by the real signer)
    revoked      a token after POST /api/logout

Each table lists the answer every caller must get; a test reports every cell
that differs at once. Groups are open: joining needs only a login, and the
owner has no powers a member lacks (there is no delete or kick).

gRPC services take only callers with a client certificate from the deployment's
CA, each role only the methods it may call (tests/test_grpc_tls.py). Past that they
take the acting account from the request: their table, called as a backend allowed
every method, says what each method checks of its arguments.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import grpc
import pytest
import pytest_asyncio

from chat import Api, Person, assert_delivered_to, assert_nothing_arrives, unique
from chorus.auth.tokens import TokenSigner
from chorus.webgate.app import OPENAPI_PATH
from chorus.common.grpctls import channel
from generic_grpc import backend_tls, method_without_stubs

GROUP = "{group}"  # replaced by the world's group id in paths and bodies
OK, CREATED, NO_CONTENT = 200, 201, 204
UNAUTHENTICATED, FORBIDDEN = 401, 403
PERSON_ROLES = ("owner", "member", "non-member", "left")
NO_PERSON = ("logged out", "expired", "revoked")


def everyone(status: int) -> dict:
    return {role: status for role in PERSON_ROLES + NO_PERSON}


def people_only(status: int) -> dict:
    return {**{role: status for role in PERSON_ROLES}, **{role: UNAUTHENTICATED for role in NO_PERSON}}


def members_only(status: int) -> dict:
    return {**people_only(status), "non-member": FORBIDDEN, "left": FORBIDDEN}


# route -> answer per caller. Routes that change state get a fresh group / token per cell.
HTTP_MATRIX = [
    ("POST", "/api/register", everyone(CREATED)),  # the token, if any, is ignored
    ("POST", "/api/login", everyone(OK)),
    ("GET", "/api/openapi.json", everyone(OK)),
    ("GET", "/api/config", everyone(OK)),  # the limits the page respects: nothing private
    ("GET", "/api/me", people_only(OK)),
    ("GET", "/api/groups", people_only(OK)),
    ("GET", "/api/groups?q=authz", people_only(OK)),
    ("POST", "/api/groups", people_only(CREATED)),
    ("GET", f"/api/groups/{GROUP}/messages", members_only(OK)),
    ("GET", f"/api/groups/{GROUP}/messages?after=0", members_only(OK)),
    ("GET", f"/api/groups/{GROUP}/members", members_only(OK)),
    ("POST", f"/api/groups/{GROUP}/join", people_only(OK)),
    ("POST", f"/api/groups/{GROUP}/leave", people_only(OK)),
    # A revoked token may log out again (idempotent); an expired one is refused like any bad token.
    ("POST", "/api/logout", {**people_only(NO_CONTENT), "revoked": NO_CONTENT}),
]
MUTATING = {("POST", f"/api/groups/{GROUP}/join"), ("POST", f"/api/groups/{GROUP}/leave"),
            ("POST", "/api/logout")}


class World:
    """An owner's group with a member, a non-member and a member who left; tokens of every kind."""

    @classmethod
    async def build(cls, api, stack) -> "World":
        world = cls()
        world.api, world.stack = api, stack
        world.owner, world.member, world.outsider, world.leaver = [
            await Person.register(api, stack.ws_url, name) for name in ("owner", "member", "outsider", "leaver")]
        world.group = await world.fresh_group()
        key = (stack.data_dir / "token.key").read_bytes().strip()
        world.expired = TokenSigner(key, ttl_secs=60).issue(world.member.user["id"], now=time.time() - 3600)[0]
        world.revoked = await world.new_token(world.member)
        await api.ok("POST", "/api/logout", token=world.revoked)
        return world

    def body(self, method: str, path: str) -> dict | None:
        if (method, path) == ("POST", "/api/groups"):
            return {"name": unique("authz")}
        if (method, path) == ("POST", "/api/register"):
            return {"username": unique("authz"), "password": "long enough pw"}
        if (method, path) == ("POST", "/api/login"):
            return {"username": self.outsider.username, "password": self.outsider.password}
        return None

    async def fresh_group(self) -> dict:
        group = await self.owner.create_group()
        await self.member.join(group)
        await self.leaver.join(group)
        await self.leaver.leave(group)
        return group

    async def new_token(self, person: Person) -> str:
        body = await self.api.ok("POST", "/api/login", json={"username": person.username,
                                                            "password": person.password})
        return body["token"]

    async def token(self, role: str, *, fresh: bool) -> str | None:
        person = {"owner": self.owner, "member": self.member, "non-member": self.outsider,
                  "left": self.leaver}.get(role)
        if person is not None:
            return await self.new_token(person) if fresh else person.token
        return {"logged out": None, "expired": self.expired, "revoked": self.revoked}[role]


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(stack):
    """One world for the module (its people cost an argon2 hash and check each)."""
    async with aiohttp.ClientSession() as http:
        yield await World.build(Api(http, stack.base_url), stack)


async def test_http_routes(world):
    wrong = []
    for method, path, answers in HTTP_MATRIX:
        mutates = (method, path) in MUTATING
        for role, expected in answers.items():
            group = await world.fresh_group() if mutates else world.group
            token = await world.token(role, fresh=path == "/api/logout" and role in PERSON_ROLES)
            body = world.body(method, path)
            status, reply = await world.api.call(method, path.replace(GROUP, group["id"]), json=body, token=token)
            if status != expected:
                wrong.append(f"{method} {path} as {role}: {status} {reply}, expected {expected}")
    assert not wrong, "\n".join(wrong)


async def test_every_route_is_in_the_matrix():
    """The OpenAPI document lists every route the gateway serves (tests/webgate/test_openapi.py)."""
    spec = json.loads(OPENAPI_PATH.read_text())
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    in_matrix = {(method, path.split("?")[0].replace(GROUP, "{group_id}")) for method, path, _ in HTTP_MATRIX}
    assert documented == in_matrix


# WebSocket ------------------------------------------------------------------------------

async def open_with(world, token) -> tuple[int | None, dict | None, aiohttp.ClientWebSocketResponse]:
    """(close code or None, first frame or None, socket) after sending auth with ``token``."""
    ws = await world.api.http.ws_connect(world.stack.ws_url)
    await ws.send_json({"op": "auth", "token": token} if token is not None else {"op": "auth"})
    msg = await ws.receive(timeout=5)
    if msg.type == aiohttp.WSMsgType.TEXT:
        return None, msg.json(), ws
    return ws.close_code, None, ws


async def test_websocket_auth(world):
    wrong = []
    for role in PERSON_ROLES + NO_PERSON:
        code, frame, ws = await open_with(world, await world.token(role, fresh=False))
        got = frame["op"] if frame else code
        expected = "ready" if role in PERSON_ROLES else 4001
        if got != expected:
            wrong.append(f"auth as {role}: {got}, expected {expected}")
        await ws.close()
    assert not wrong, "\n".join(wrong)


WS_OPS = {  # op -> (frame, the answer a member gets, the answer anyone else gets, the frames that answer)
    "resume": ({"op": "resume", "since": {GROUP: 0}}, "message", "resumed", {"message", "resumed"}),
    "read": ({"op": "read", "group": GROUP, "seq": 1}, "read", "not_member", {"read"}),
    "ping": ({"op": "ping"}, "pong", "pong", {"pong"}),
    # last: the sender's own copy of the message may come after anything that follows
    "send": ({"op": "send", "group": GROUP, "text": "hello", "ref": "r"}, "ack", "not_member", {"ack"}),
}


async def test_websocket_ops(world):
    page = await world.owner.open_page()
    await page.post_and_ack(world.group, "before everything")
    await page.close()
    wrong = []
    for role in PERSON_ROLES:
        person = {"owner": world.owner, "member": world.member, "non-member": world.outsider,
                  "left": world.leaver}[role]
        page = await person.open_page()
        for op, (frame, member_answer, other_answer, answer_ops) in WS_OPS.items():
            expected = member_answer if role in ("owner", "member") else other_answer
            await page.send({k: _fill(v, world.group["id"]) for k, v in frame.items()})
            answer = await _answer(page, answer_ops | {"error"})
            got = answer.get("code") if answer["op"] == "error" else answer["op"]
            if got != expected:
                wrong.append(f"{op} as {role}: {answer}, expected {expected}")
            await page.send({"op": "ping"})  # everything the op set off comes before this pong
            await _answer(page, {"pong"})
        await page.close()
    assert not wrong, "\n".join(wrong)


def _fill(value, group_id: str):
    if value == GROUP:
        return group_id
    if isinstance(value, dict):
        return {_fill(k, group_id): v for k, v in value.items()}
    return value


async def _answer(page, ops: set[str]) -> dict:
    """The next frame with one of ``ops``; others are skipped."""
    while True:
        frame = await page.next_frame()
        if frame["op"] in ops:
            return frame


async def test_a_member_who_left_neither_receives_nor_reads_history(world):
    alice, bob = world.owner, world.outsider
    group = await alice.create_group()
    await bob.join(group)
    alice_page, bob_page = await alice.open_page(), await bob.open_page()
    await alice_page.post_and_ack(group, "while bob is in")
    await assert_delivered_to([bob_page], group, "while bob is in")

    await bob.leave(group)
    await bob_page.expect("left")
    await alice_page.post_and_ack(group, "after bob left")
    await assert_nothing_arrives(bob_page)
    status, body = await bob.api.call("GET", f"/api/groups/{group['id']}/messages", token=bob.token)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    await bob_page.send({"op": "resume", "since": {group["id"]: 0}})
    await bob_page.expect("resumed")
    assert not [f for f in bob_page.seen if f.get("op") == "message"], "nothing replayed after leaving"
    fresh_page = await bob.open_page()
    assert group["id"] not in [g["id"] for g in fresh_page.ready["groups"]]
    for page in (alice_page, bob_page, fresh_page):
        await page.close()


async def test_a_revoked_token_opens_no_new_page_and_its_open_ones_close(world):
    """As documented: logout revokes the token for every new request, and pages already open
    with it are closed within 2 s (4001 "token revoked")."""
    token = await world.new_token(world.member)
    page_ws = await world.api.http.ws_connect(world.stack.ws_url)
    await page_ws.send_json({"op": "auth", "token": token})
    assert (await page_ws.receive_json(timeout=5))["op"] == "ready"
    await world.api.ok("POST", "/api/logout", token=token)
    code, _, ws = await open_with(world, token)
    assert code == 4001
    closing = await page_ws.receive(timeout=3)
    assert (closing.type, page_ws.close_code, closing.extra) == (aiohttp.WSMsgType.CLOSE, 4001, "token revoked")
    await ws.close()


# gRPC (internal) -----------------------------------------------------------------------

G_OK = grpc.StatusCode.OK
G_UNAUTH, G_NOT_FOUND = grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND
G_INVALID = grpc.StatusCode.INVALID_ARGUMENT

# (port, service, method, request fields with {placeholders}, expected status). No row sends
# credentials of the caller: these services trust their network and check arguments only.
GRPC_MATRIX = [
    ("auth", "chorus.auth.v1.Auth", "Register", {"username": "{new_username}", "password": "long enough pw"}, G_OK),
    ("auth", "chorus.auth.v1.Auth", "Login", {"username": "{username}", "password": "{password}"}, G_OK),
    ("auth", "chorus.auth.v1.Auth", "Login", {"username": "{username}", "password": "wrong password"}, G_UNAUTH),
    ("auth", "chorus.auth.v1.Auth", "Authenticate", {"token": "{token}"}, G_OK),
    ("auth", "chorus.auth.v1.Auth", "Authenticate", {"token": "{expired}"}, G_UNAUTH),
    ("auth", "chorus.auth.v1.Auth", "Authenticate", {"token": "{revoked}"}, G_UNAUTH),
    ("auth", "chorus.auth.v1.Auth", "Authenticate", {"token": "not a token"}, G_UNAUTH),
    ("auth", "chorus.auth.v1.Auth", "Logout", {"token": "{revoked}"}, G_OK),
    ("auth", "chorus.auth.v1.Auth", "Logout", {"token": "{expired}"}, G_UNAUTH),
    ("auth", "chorus.auth.v1.Auth", "GetAccounts", {"ids": ["{account}"]}, G_OK),
    # A backend vouches for its own site's users (the network is trusted; webgate checks tokens first).
    ("auth", "chorus.auth.v1.Auth", "ResolveExternalAccount", {"issuer": "authz-site", "subject": "{new_username}"},
     G_OK),
    ("auth", "chorus.auth.v1.Auth", "ResolveExternalAccount", {"issuer": "", "subject": "1"}, G_INVALID),
    ("auth", "chorus.auth.v1.Auth", "ListRevocations", {"since_ms": 0}, G_OK),
    ("membership", "chorus.membership.v1.Membership", "CreateGroup",
     {"owner_id": "{account}", "name": "{new_group_name}"}, G_OK),
    ("membership", "chorus.membership.v1.Membership", "JoinGroup", {"group_id": "{group}", "account_id": "{outsider}"}, G_OK),
    ("membership", "chorus.membership.v1.Membership", "JoinGroup", {"group_id": "g_nope", "account_id": "{outsider}"},
     G_NOT_FOUND),
    # Account ids auth never issued get nowhere (membership asks auth).
    ("membership", "chorus.membership.v1.Membership", "JoinGroup", {"group_id": "{group}", "account_id": "u_madeup"},
     G_NOT_FOUND),
    ("membership", "chorus.membership.v1.Membership", "CreateGroup",
     {"owner_id": "u_madeup", "name": "{new_group_name}"}, G_NOT_FOUND),
    ("membership", "chorus.membership.v1.Membership", "IsMember", {"group_id": "{group}", "account_id": "{account}"},
     G_OK),
    ("membership", "chorus.membership.v1.Membership", "IsMember", {"group_id": "g_nope", "account_id": "{account}"},
     G_NOT_FOUND),
    ("membership", "chorus.membership.v1.Membership", "LeaveGroup", {"group_id": "{group}", "account_id": "{outsider}"}, G_OK),
    ("membership", "chorus.membership.v1.Membership", "ListUserGroups", {"account_id": "{account}"}, G_OK),
    ("membership", "chorus.membership.v1.Membership", "ListGroupMembers", {"group_id": "{group}"}, G_OK),
    ("membership", "chorus.membership.v1.Membership", "ListGroups", {}, G_OK),
    ("membership", "chorus.membership.v1.Membership", "ListGroups", {"query": "authz", "cursor": "garbage"}, G_INVALID),
    ("broker-grpc", "chorus.messages.v1.Messages", "PostMessage",
     {"group_id": "{group}", "sender_name": "authz-bot", "text": "from a backend"}, G_OK),
    ("broker-grpc", "chorus.messages.v1.Messages", "PostMessage",
     {"group_id": "g_nope", "sender_name": "authz-bot", "text": "nowhere"}, G_NOT_FOUND),
    ("broker-grpc", "chorus.messages.v1.Messages", "ListMessages", {"group_id": "{group}"}, G_OK),
]


def _filled(value, values: dict):
    if isinstance(value, list):
        return [_filled(v, values) for v in value]
    return value.format(**values) if isinstance(value, str) else value


async def test_grpc_methods(world):
    values = {"new_username": unique("grpcauthz"), "username": world.member.username,
              "password": world.member.password, "token": world.member.token, "expired": world.expired,
              "revoked": world.revoked, "account": world.member.user["id"], "outsider": world.outsider.user["id"],
              "group": world.group["id"], "new_group_name": unique("grpcauthz")}
    wrong = []
    tls = backend_tls(world.stack.keys)
    for port, service, method, fields, expected in GRPC_MATRIX:
        with channel(f"127.0.0.1:{world.stack.ports[port]}", tls) as open_channel:
            call, request_class = method_without_stubs(open_channel, service, method)
            request = request_class(**{k: _filled(v, values) for k, v in fields.items()})
            try:
                await asyncio.to_thread(call, request, timeout=5)
                got = G_OK
            except grpc.RpcError as error:
                got = error.code()
        if got != expected:
            wrong.append(f"{service}/{method} {fields}: {got}, expected {expected}")
    assert not wrong, "\n".join(wrong)
