"""Two membership replicas on one PostgreSQL schema race a join and a leave of one person, over
and over: every broker of a three-broker cluster, and the person's open page, end in the state
the database committed.

Each replica tells every broker about its own changes, on its own threads, so without commit
order numbers a join committed first may reach a broker (and, through it, the page) after a
leave committed later. Real processes: auth, two membership replicas, three brokers, one gateway.
PostgreSQL comes from $CHORUS_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time

import aiohttp
import pytest
import zmq
from conftest import _with_search_path, free_port
from generic_grpc import backend_tls
from processes import Service, service_env

from chat import Api, Page, Person
from chorus.common import grpctls
from chorus.common.curve import ClientCurve
from chorus.common.keys import ensure_keys
from chorus.wire.pb import broker_pb2
from chorus.wire.pb import membership_pb2 as pb
from chorus.wire.pb import membership_pb2_grpc as pb_grpc

pytestmark = pytest.mark.postgres

GROUPS, ROUNDS = 12, 4          # 48 races, each checked
SETTLE_WITHIN_SECS = 10.0       # a bound for the harness: changes reach everyone well within it
STILL_AGREE_AFTER_SECS = 0.5
RPC_TIMEOUT_SECS = 10
Code = broker_pb2.Failure.Code


class ReplicaStack:
    def __init__(self, tmp_path, database_url: str):
        self.tmp_path = tmp_path
        self.env = {**service_env(secrets.token_urlsafe(32)), "DATABASE_URL": database_url}
        self.keys = ensure_keys(tmp_path / "keys")
        self.routers = [f"tcp://127.0.0.1:{free_port()}" for _ in range(3)]
        self.started: dict[str, Service] = {}

    def start(self) -> None:
        auth = self._start("auth", ["--listen", "127.0.0.1:0", "--keys-dir", str(self.keys / "auth")])
        for name in ("membership-a", "membership-b"):
            self._start("membership", [
                "--listen", "127.0.0.1:0", "--broker-seeds", ",".join(self.routers), "--auth", auth.address("grpc"),
                "--keys-dir", str(self.keys / "membership")], key=name)
        for k, router in enumerate(self.routers):
            self._start("broker", [
                "--router", router, "--pub", "tcp://127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
                "--membership", self.membership("a"), "--cluster-node", f"b{k + 1}",
                "--keys-dir", str(self.keys / "broker")], key=f"b{k + 1}")
        self._start("webgate", [
            "--listen", "127.0.0.1:0", "--auth", auth.address("grpc"), "--membership", self.membership("a"),
            "--broker-seeds", ",".join(self.routers), "--keys-dir", str(self.keys / "gateway")])

    def membership(self, replica: str) -> str:
        return self.started[f"membership-{replica}"].address("grpc")

    def _start(self, name: str, args: list[str], key: str | None = None) -> Service:
        service = self.started[key or name] = Service(name, args, self.env, self.tmp_path, label=key)
        return service.start()

    def stop(self) -> None:
        # Membership before the brokers: a replica stops at once while it can still reach them.
        order = ["webgate", "membership-b", "membership-a", "b3", "b2", "b1", "auth"]
        for key in order:
            service = self.started.get(key)
            if service is not None and service.process is not None and service.process.poll() is None:
                service.stop()


@pytest.fixture
def replicas(tmp_path, postgres_url, postgres_schema):
    stack = ReplicaStack(tmp_path, _with_search_path(postgres_url, postgres_schema))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


class BrokerView:
    """What one broker thinks of one person: would it take a post by them into a group?

    A gateway's link (the gateway key) with a session of the person's: a broker refuses the
    post NOT_MEMBER by its own membership table, before it looks at who owns the group (a
    non-owner answers MOVED; the owner stores it)."""

    def __init__(self, context: zmq.Context, router: str, curve: ClientCurve, account: dict, groups: list[str]):
        self.router, self.account, self.groups = router, account, groups
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        curve.apply(self.socket)
        self.socket.connect(router)
        self.next_id = 0

    def takes_posts_in(self) -> set[str]:
        """The groups this broker would take the person's post into, right now."""
        if self._ask(hello=broker_pb2.Hello(gateway_id="probe")).welcome.fresh:  # also keeps us from expiring
            person = broker_pb2.Person(id=self.account["id"], username=self.account["username"],
                                       display_name=self.account["display_name"])
            self._ask(open_session=broker_pb2.OpenSession(session_id="probe", account=person, group_ids=self.groups))
        taken = set()
        for group in self.groups:
            reply = self._ask(post=broker_pb2.Post(session_id="probe", group_id=group, text="probe"))
            if reply.WhichOneof("kind") == "posted" or reply.failure.code == Code.MOVED:
                taken.add(group)
            elif reply.failure.code != Code.NOT_MEMBER:
                raise AssertionError(f"broker at {self.router}: unexpected answer {reply}")
        return taken

    def _ask(self, **kind) -> broker_pb2.BrokerReply:
        self.next_id += 1
        self.socket.send(broker_pb2.GatewayRequest(request_id=self.next_id, **kind).SerializeToString())
        while True:  # skip answers to asks that timed out before
            assert self.socket.poll(RPC_TIMEOUT_SECS * 1000), f"broker at {self.router} did not answer"
            reply = broker_pb2.BrokerReply.FromString(self.socket.recv())
            if reply.request_id == self.next_id:
                return reply

    def close(self) -> None:
        self.socket.close(linger=0)


class PageView:
    """The groups an open page shows the person in: ready's, then every joined and left frame."""

    def __init__(self, page: Page):
        self.page = page
        self.groups = {g["id"] for g in page.ready["groups"]}

    async def read(self, quiet_secs: float = 0.05) -> set[str]:
        while True:
            try:
                frame = await self.page.next_frame(timeout=quiet_secs)
            except TimeoutError:
                return set(self.groups)
            if frame["op"] == "joined":
                self.groups.add(frame["group"]["id"])
            elif frame["op"] == "left":
                self.groups.discard(frame["group"]["id"])


async def test_racing_joins_and_leaves_through_two_replicas_end_in_the_databases_state_everywhere(replicas):
    rng = random.Random(13)
    tls = backend_tls(replicas.keys, allow="membership.JoinGroup,membership.LeaveGroup,membership.IsMember")
    replica = {r: pb_grpc.MembershipStub(grpctls.channel(replicas.membership(r), tls)) for r in ("a", "b")}
    async with aiohttp.ClientSession() as http:
        base = replicas.started["webgate"].address("http")
        api, ws_url = Api(http, base), base.replace("http", "ws") + "/ws"
        owner = await Person.register(api, ws_url, "owner")
        ann = await Person.register(api, ws_url, "ann")
        groups = [(await owner.create_group())["id"] for _ in range(GROUPS)]
        for group in groups[::2]:
            await ann.join({"id": group})  # she starts in half of them
        page = PageView(await ann.open_page())
        context = zmq.Context()
        brokers = {f"b{k + 1}": BrokerView(context, router, ClientCurve.load(replicas.keys / "gateway"), ann.user,
                                           groups) for k, router in enumerate(replicas.routers)}

        def race(group: str, joiner: str, leaver: str) -> None:
            """A join through one replica and a leave through the other, sent at the same moment."""
            join = replica[joiner].JoinGroup.future(pb.JoinGroupRequest(group_id=group, account_id=ann.user["id"]),
                                                    timeout=RPC_TIMEOUT_SECS)
            leave = replica[leaver].LeaveGroup.future(pb.LeaveGroupRequest(group_id=group, account_id=ann.user["id"]),
                                                      timeout=RPC_TIMEOUT_SECS)
            join.result(), leave.result()

        def committed() -> set[str]:
            return {g for g in groups if replica["a"].IsMember(
                pb.IsMemberRequest(group_id=g, account_id=ann.user["id"]), timeout=RPC_TIMEOUT_SECS).member}

        try:
            for round_ in range(ROUNDS):
                order = [rng.choice([("a", "b"), ("b", "a")]) for _ in groups]
                await asyncio.gather(*(asyncio.to_thread(race, g, *o) for g, o in zip(groups, order)))
                truth = await asyncio.to_thread(committed)
                views = await settled_views(truth, page, brokers)
                assert views == {name: truth for name in views}, (
                    f"round {round_}: the database says ann is in {sorted(truth)}; "
                    + "; ".join(f"{name} says {sorted(view)}" for name, view in views.items() if view != truth))
                print(f"round {round_}: ann in {len(truth)} of {GROUPS} groups; every broker and her page agree")
        finally:
            for view in brokers.values():
                view.close()
            context.destroy(linger=0)


async def settled_views(truth: set[str], page: PageView, brokers: dict[str, BrokerView]) -> dict[str, set[str]]:
    """Each broker's and the page's view once they have all equalled ``truth`` and still do a
    moment later (a late change must not undo it), or as they stand when the harness's bound
    has passed."""
    deadline = time.monotonic() + SETTLE_WITHIN_SECS
    agreed = False
    while True:
        views = {"page": await page.read()}
        for name, broker in brokers.items():
            views[name] = await asyncio.to_thread(broker.takes_posts_in)
        if all(view == truth for view in views.values()):
            if agreed:
                return views
            agreed = True
            await asyncio.sleep(STILL_AGREE_AFTER_SECS)
            continue
        if time.monotonic() > deadline:
            return views
        agreed = False
        await asyncio.sleep(0.2)
