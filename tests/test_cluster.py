"""A cluster of three brokers and two gateways on real PostgreSQL, as real processes, with traffic:
a broker killed, paused past its lease, stopped gracefully, or added; nothing acknowledged is lost,
every page ends showing exactly the stored history, and seqs stay gap-free and unique.

PostgreSQL comes from $CHORUS_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test);
the services share one fresh schema, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time

import aiohttp
import pytest
from conftest import _with_search_path, free_port, running_stack
from faultload import Crowd, stored_seqs
from processes import Service, service_env

from chat import Api, Person, assert_delivered_to
from generic_grpc import backend_tls, call_without_stubs
from chorus.common.keys import ensure_keys
from chorus.wire.cluster import rendezvous_owner

pytestmark = pytest.mark.postgres

LEASE_SECS, RENEW_SECS = 2.0, 0.25
PEOPLE, GROUPS, PER_PERSON, SENDERS, RATE = 40, 12, 2, 12, 60.0
RECOVERY_LIMIT_SECS = 20.0  # a bound for the harness; the figures are reported, and measured in bench/


class ClusterStack:
    def __init__(self, tmp_path, database_url: str):
        self.tmp_path = tmp_path
        self.env = {**service_env(secrets.token_urlsafe(32)), "DATABASE_URL": database_url,
                    "CHORUS_BROKER_LEASE_SECS": str(LEASE_SECS), "CHORUS_BROKER_LEASE_RENEW_SECS": str(RENEW_SECS),
                    "CHORUS_REGISTRATIONS_PER_IP": "1000000"}  # the crowd registers from one address
        self.keys = ensure_keys(tmp_path / "keys")
        self.routers = [f"tcp://127.0.0.1:{free_port()}" for _ in range(4)]  # the 4th joins later
        self.seeds = ",".join(self.routers[:3])
        self.started: dict[str, Service] = {}

    def start(self) -> None:
        auth = self._start("auth", ["--listen", "127.0.0.1:0", "--keys-dir", str(self.keys / "auth")])
        membership = self._start("membership", [
            "--listen", "127.0.0.1:0", "--broker-seeds", self.seeds, "--auth", auth.address("grpc"),
            "--keys-dir", str(self.keys / "membership")])
        self.membership = membership.address("grpc")
        for k in range(3):
            self.start_broker(k)
        for name in ("webgate-a", "webgate-b"):
            self._start("webgate", [
                "--listen", "127.0.0.1:0", "--auth", auth.address("grpc"), "--membership", self.membership,
                "--broker-seeds", self.seeds, "--keys-dir", str(self.keys / "gateway")], key=name)

    def start_broker(self, k: int) -> Service:
        return self._start("broker", [
            "--router", self.routers[k], "--pub", "tcp://127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
            "--membership", self.membership, "--cluster-node", f"b{k + 1}",
            "--keys-dir", str(self.keys / "broker")], key=f"b{k + 1}")

    def _start(self, name: str, args: list[str], key: str | None = None) -> Service:
        service = self.started[key or name] = Service(name, args, self.env, self.tmp_path, label=key)
        service.start()
        return service

    def url(self, gateway: str) -> str:
        return self.started[gateway].address("http")

    def brokers(self) -> list[str]:
        return [k for k in self.started if k.startswith("b") and self.started[k].process.poll() is None]

    def stop(self) -> None:
        for service in reversed(list(self.started.values())):
            if service.process is not None and service.process.poll() is None:
                service.stop()


@pytest.fixture
def cluster(tmp_path, postgres_url, postgres_schema):
    stack = ClusterStack(tmp_path, _with_search_path(postgres_url, postgres_schema))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


async def crowd_on_both_gateways(http, cluster: ClusterStack) -> Crowd:
    api = Api(http, cluster.url("webgate-a"))
    urls = [cluster.url(g).replace("http", "ws") + "/ws" for g in ("webgate-a", "webgate-b")]
    crowd = await Crowd.gather(api, urls[0], people=PEOPLE, groups=GROUPS, per_person=PER_PERSON)
    for i, person in enumerate(crowd.people):
        person.ws_url = urls[i % 2]  # half the pages on each gateway
    return crowd


def owner_of_most(cluster: ClusterStack, groups: list[str]) -> str:
    """The live broker that owns the most of ``groups`` (by the same hash the cluster uses)."""
    owners = [rendezvous_owner(g, cluster.brokers()) for g in groups]
    return max(set(owners), key=owners.count)


async def assert_gap_free(crowd: Crowd) -> None:
    for group in crowd.groups:
        seqs = await stored_seqs(crowd.people[0], group)
        assert seqs == list(range(1, len(seqs) + 1)), f"group {group}: seqs {seqs} are not 1..n"


def assert_nothing_lost(tally) -> None:
    print(tally.row())
    assert tally.acked > 0
    assert tally.lost == 0, f"acknowledged messages missing from storage: {tally}"
    assert tally.missing_on_pages == 0, f"stored messages a page never showed: {tally}"
    assert tally.extra_on_pages == 0, f"pages showed what is not stored: {tally}"


async def test_kill_9_of_a_broker_moves_its_groups_and_loses_nothing_acknowledged(cluster):
    async with aiohttp.ClientSession() as http:
        crowd = await crowd_on_both_gateways(http, cluster)
        victim = owner_of_most(cluster, crowd.groups)

        async def inject() -> float:
            cluster.started[victim].kill()
            return time.monotonic()
        tally = await crowd.run(f"kill -9 {victim}", inject, rate=RATE, senders=SENDERS, before_secs=2.0,
                                after_secs=3.0, recovery_limit_secs=RECOVERY_LIMIT_SECS)
        assert_nothing_lost(tally)
        await assert_gap_free(crowd)


async def test_a_broker_paused_past_its_lease_stores_nothing_for_the_groups_it_lost(cluster):
    async with aiohttp.ClientSession() as http:
        crowd = await crowd_on_both_gateways(http, cluster)
        victim = owner_of_most(cluster, crowd.groups)
        process = cluster.started[victim].process

        async def inject() -> float:
            process.send_signal(signal.SIGSTOP)
            await asyncio.sleep(LEASE_SECS * 2)  # the others take its groups over meanwhile
            process.send_signal(signal.SIGCONT)
            return time.monotonic()
        tally = await crowd.run(f"SIGSTOP {victim}", inject, rate=RATE, senders=SENDERS, before_secs=2.0,
                                after_secs=3.0, recovery_limit_secs=RECOVERY_LIMIT_SECS)
        assert_nothing_lost(tally)
        await assert_gap_free(crowd)
        assert process.poll() is None, "it rejoined rather than died"


async def test_sigterm_of_a_broker_hands_its_groups_over_without_refusing_a_post(cluster):
    async with aiohttp.ClientSession() as http:
        crowd = await crowd_on_both_gateways(http, cluster)
        victim = owner_of_most(cluster, crowd.groups)

        async def inject() -> float:
            assert await asyncio.to_thread(cluster.started[victim].stop) == 0
            return time.monotonic()
        tally = await crowd.run(f"SIGTERM {victim}", inject, rate=RATE, senders=SENDERS, before_secs=2.0,
                                after_secs=3.0, recovery_limit_secs=RECOVERY_LIMIT_SECS)
        assert_nothing_lost(tally)
        assert tally.failed_posts == 0 and tally.unanswered_posts == 0, f"a planned stop refused posts: {tally}"
        await assert_gap_free(crowd)


async def test_a_fourth_broker_takes_a_share_under_load_and_nothing_is_lost(cluster):
    async with aiohttp.ClientSession() as http:
        crowd = await crowd_on_both_gateways(http, cluster)

        async def inject() -> float:
            await asyncio.to_thread(cluster.start_broker, 3)
            return time.monotonic()
        tally = await crowd.run("a 4th broker joins", inject, rate=RATE, senders=SENDERS, before_secs=2.0,
                                after_secs=3.0, recovery_limit_secs=RECOVERY_LIMIT_SECS)
        assert_nothing_lost(tally)
        assert tally.failed_posts == 0, f"adding a broker refused posts: {tally}"
        await assert_gap_free(crowd)
        owners = {rendezvous_owner(g, ["b1", "b2", "b3", "b4"]) for g in crowd.groups}
        assert "b4" in owners, "the groups the new broker wins"  # the hash gives it some of 12


async def test_a_backend_posts_through_any_brokers_messages_service_into_any_group(cluster):
    """The Messages service of each broker forwards a post to its group's owner (MOVED tells it
    which): the post is stored once, in the group's own sequence, and reaches the pages."""
    async with aiohttp.ClientSession() as http:
        api = Api(http, cluster.url("webgate-a"))
        ws_url = cluster.url("webgate-b").replace("http", "ws") + "/ws"
        alice = await Person.register(api, ws_url, "alice")
        groups = [await alice.create_group() for _ in range(6)]
        owners = {rendezvous_owner(g["id"], ["b1", "b2", "b3"]) for g in groups}
        assert len(owners) > 1, "the groups are spread over the brokers"
        page = await alice.open_page()
        tls = backend_tls(cluster.keys, allow="messages.PostMessage")
        for broker in ("b1", "b2", "b3"):
            address = cluster.started[broker].address("grpc")
            for n, group in enumerate(groups):
                reply = await asyncio.to_thread(
                    call_without_stubs, address, "chorus.messages.v1.Messages", "PostMessage", tls=tls,
                    group_id=group["id"], sender_name="Billing", text=f"via {broker}",
                    idempotency_key=f"{broker}-{n}")
                assert reply.seq == {"b1": 1, "b2": 2, "b3": 3}[broker]
                frame = await page.expect("message", group=group["id"], seq=reply.seq)
                assert frame["text"] == f"via {broker}" and frame["system"] is True


async def test_chorus_up_with_brokers_2_runs_a_cluster_people_chat_on(tmp_path, postgres_url, postgres_schema):
    """The documented one command: `chorus up --brokers 2 --database-url postgresql://...`."""
    database = _with_search_path(postgres_url, postgres_schema)
    with running_stack(tmp_path, {"CHORUS_REGISTRATIONS_PER_IP": "1000000"},
                       args=["--brokers", "2", "--database-url", database]) as stack:
        async with aiohttp.ClientSession() as http:
            api = Api(http, stack.base_url)
            alice = await Person.register(api, stack.ws_url, "alice")
            bob = await Person.register(api, stack.ws_url, "bob")
            groups = [await alice.create_group() for _ in range(6)]
            assert len({rendezvous_owner(g["id"], ["broker-1", "broker-2"]) for g in groups}) == 2
            for group in groups:
                await bob.join(group)
            pages = [await alice.open_page(), await bob.open_page()]
            for group in groups:
                await pages[0].post_and_ack(group, f"hello {group['id']}")
                await assert_delivered_to(pages, group, f"hello {group['id']}")
