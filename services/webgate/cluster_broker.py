"""The gateway's side of a cluster of brokers: one link per live broker, each group's posts to its owner.

Same interface as ``ZmqBroker`` (broker.Broker), so the hub and the sessions
do not know whether there is one broker or several.

- Where the brokers are: asked of the seeds at start (``Cluster`` request),
  then learnt from the ClusterInfo every broker publishes when the live set
  changes (CLUSTER_TOPIC on the SUB), and re-asked every ``poll_secs`` in case
  one was missed. Each live broker gets a link (DEALER, heartbeat) and its PUB
  is connected to the one SUB socket, so subscriptions reach every broker.
- Posts go to the group's owner: the rendezvous winner (chorus.wire.cluster)
  of the live brokers as we last heard them. A broker that disagrees answers
  MOVED naming the one it believes wins; the post is re-sent there, and
  MOVED without a name, NOT_READY or a broker we cannot reach make us ask
  again after a short, growing pause, until ``retry_secs`` is spent. After a
  lost connection the post is re-sent only when it has an idempotency key
  (the store then answers a repeat with the original ack); without one, the
  person decides.
- Sessions and subscription barriers go to every broker: any of them may
  become the owner of a session's groups. Reads go to the owner (any broker
  can answer them from the store; the owner is simply the one most surely up).
- When groups change owner, ``on_moved`` (the hub) catches them up from the
  store above what this gateway fanned out, as after a broker restart: what
  the old owner stored but never published reaches the pages, nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from chorus.common.brokerlink import AsyncBrokerLink
from chorus.wire.cluster import ClusterMap, Node
from chorus.wire.conversation import (BrokerProblem, BrokerUnreachable, ConnectionLost, Moved, NotReady,
                                      StoreUnavailable, UnknownSession)
from chorus.wire.pb import broker_pb2
from chorus.wire.topics import group_topic

from .broker import Publications, ZmqBroker, _api_error
from .errors import Unavailable

__all__ = ["ClusterBroker", "DEFAULT_POLL_SECS"]

log = logging.getLogger(__name__)

DEFAULT_POLL_SECS = 2.0   # re-ask the live set this often, in case a ClusterInfo was missed


class _NoOwner(BrokerProblem):
    """No live broker known for the group (yet): ask the cluster again."""


@dataclass
class _Member:
    node: Node
    broker: ZmqBroker
    heartbeat: asyncio.Task | None = None


class ClusterBroker:
    def __init__(self, seeds: Iterable[str], publications: Publications, *,
                 make_link: Callable[[str], AsyncBrokerLink],
                 on_fresh: Callable[[], Awaitable[None]] | None = None,
                 on_moved: Callable[[list[str]], Awaitable[None]] | None = None,
                 poll_secs: float = DEFAULT_POLL_SECS, retry_secs: float) -> None:
        self.seeds = list(seeds)
        self.publications = publications
        self.map = ClusterMap()
        self.on_fresh = on_fresh    # a broker forgot us (restart): register again (the hub)
        self.on_moved = on_moved    # groups changed owner: catch them up (the hub)
        self._make_link = make_link
        self._links: dict[str, AsyncBrokerLink] = {}  # router endpoint -> its link, kept (see _link)
        self._members: dict[str, _Member] = {}
        self._left: dict[str, str] = {}  # name -> incarnation of brokers that said they left
        self._subscribed: dict[str, int] = {}  # group -> subscriptions (to know what moved)
        self._poll_secs = poll_secs
        self._retry_secs = retry_secs
        self._tasks: list[asyncio.Task] = []
        self._applying = asyncio.Lock()

    # life ---------------------------------------------------------------------

    async def start(self) -> None:
        self.publications.on_cluster = self._announced
        self._tasks.append(asyncio.create_task(self._poll(), name="broker-cluster"))

    async def close(self) -> None:
        tasks, self._tasks = list(self._tasks), []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for name in list(self._members):
            await self._drop(name)
        for link in self._links.values():
            await link.close()

    async def _link(self, endpoint: str) -> AsyncBrokerLink:
        """The link to ``endpoint``, made once and kept while we run: a broker that comes back
        is reached through it again. Not closed before: closing a zmq.asyncio socket while
        the loop (uvloop) serves WebSockets was seen to drop some of those connections
        (1006 on pages) in tests/test_cluster.py, and a link is one idle socket."""
        link = self._links.get(endpoint)
        if link is None:
            link = self._links[endpoint] = self._make_link(endpoint)
            await link.start()
        return link

    async def _poll(self) -> None:
        while True:
            try:
                info = await self._ask_cluster()
                if info is not None:
                    await self.apply(info)
            except Exception:  # a bug of ours must not stop following the cluster
                log.exception("following the live brokers failed; trying again")
            await asyncio.sleep(self._poll_secs if self._members else min(self._poll_secs, 0.2))

    async def _ask_cluster(self) -> broker_pb2.ClusterInfo | None:
        """The live set, from the first broker (known ones first, then the seeds) that answers."""
        for member in list(self._members.values()):
            with contextlib.suppress(BrokerProblem):
                info = await member.broker.link.ask("cluster", cluster=broker_pb2.ClusterQuery())
                if info.nodes:
                    return info
        known = {m.node.router for m in self._members.values()}
        for seed in [s for s in self.seeds if s not in known]:
            link = await self._link(seed)
            try:
                await link.ask("welcome", hello=link.conversation.hello_message())
                info = await link.ask("cluster", cluster=broker_pb2.ClusterQuery())
                if info.nodes:
                    return info
            except BrokerProblem:
                continue
        return None

    def _announced(self, payload: bytes) -> None:
        try:
            info = broker_pb2.ClusterInfo.FromString(payload)
        except DecodeError:
            log.error("dropped a cluster announcement that is not a ClusterInfo")
            return
        self._background(self.apply(info), "broker-cluster-apply")

    def _background(self, coroutine, name: str) -> None:
        """Run ``coroutine`` as a task we keep (so it is not collected half-way) and whose
        failure is logged, not lost."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.append(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def apply(self, info: broker_pb2.ClusterInfo) -> None:
        """Take a new live set: links for new brokers, none for gone ones, moved groups caught up."""
        if info.HasField("left"):  # others may list it until their next heartbeat: we know better
            self._left[info.left.name] = info.left.incarnation
        nodes = [n for n in info.nodes if self._left.get(n.name) != n.incarnation]
        if not nodes:  # the last broker leaving: keep what we had, someone will come back
            return
        async with self._applying:
            new = ClusterMap(Node(n.name, n.router, n.pub, n.grpc, n.incarnation) for n in nodes)
            if new == self.map:
                return
            old, self.map = self.map, new
            for name in [n for n in self._members if n not in new.nodes or new.nodes[n] != old.nodes.get(n)]:
                await self._drop(name)
            for name, node in new.nodes.items():
                if name not in self._members:
                    await self._add(node)
            log.info("brokers: %s", ", ".join(sorted(new.nodes)))
            moved = old.moved(new, self._subscribed) if old.nodes else []
        if moved and self.on_moved is not None:
            await self.on_moved(moved)

    async def _add(self, node: Node) -> None:
        link = await self._link(node.router)
        self.publications.connect(node.pub)
        member = _Member(node, ZmqBroker(link, self.publications))
        member.heartbeat = asyncio.create_task(link.keep_alive(on_fresh=self._fresh), name=f"broker-{node.name}")
        self._members[node.name] = member

    async def _drop(self, name: str) -> None:
        member = self._members.pop(name)
        if member.heartbeat is not None:
            member.heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await member.heartbeat
        self.publications.disconnect(member.node.pub)
        member.broker.link.abandon()

    async def _fresh(self) -> None:
        if self.on_fresh is not None:
            await self.on_fresh()

    # subscriptions --------------------------------------------------------------

    def subscribe(self, group_id: str) -> None:
        self._subscribed[group_id] = self._subscribed.get(group_id, 0) + 1
        self.publications.subscribe(group_topic(group_id))

    def unsubscribe(self, group_id: str) -> None:
        left = self._subscribed.get(group_id, 0) - 1
        if left > 0:
            self._subscribed[group_id] = left
        else:
            self._subscribed.pop(group_id, None)
        self.publications.unsubscribe(group_topic(group_id))

    async def sync(self) -> None:
        """The barrier at every live broker: each one's PUB has our subscriptions made before this.
        A broker that left meanwhile does not count: it publishes nothing more."""
        await self._everywhere(lambda broker: broker.sync(), excuse_gone=True)

    # requests -----------------------------------------------------------------

    async def open_session(self, session_id: str, user: dict, group_ids: Iterable[str]) -> None:
        groups = list(group_ids)
        await self._everywhere(lambda broker: broker.open_session(session_id, user, groups))

    async def close_session(self, session_id: str) -> None:
        await self._everywhere(lambda broker: broker.close_session(session_id))

    async def post(self, session_id: str, group_id: str, text: str,
                   idempotency_key: str = "") -> broker_pb2.Posted:
        hint: list[str] = []  # where the last MOVED pointed

        def again(exc: BaseException) -> bool:
            if isinstance(exc, Moved) and exc.moved_to:
                hint[:] = [exc.moved_to]
                return True
            hint.clear()
            if isinstance(exc, (Moved, NotReady, _NoOwner, BrokerUnreachable, UnknownSession)):
                return True  # nothing was done (a broker that just joined may not have our sessions yet)
            return bool(idempotency_key) and isinstance(exc, (ConnectionLost, StoreUnavailable))

        async def attempt() -> broker_pb2.Posted:
            target = hint[0] if hint and hint[0] in self._members else self.map.owner_of(group_id)
            member = self._members.get(target) if target else None
            if member is None:
                self._refresh_soon()
                raise _NoOwner(f"no broker known for group {group_id!r}")
            try:
                return await member.broker.link.ask("posted", post=broker_pb2.Post(
                    session_id=session_id, group_id=group_id, text=text, idempotency_key=idempotency_key))
            except (ConnectionLost, BrokerUnreachable):
                self._refresh_soon()
                raise

        try:
            async for attempt_state in AsyncRetrying(retry=retry_if_exception(again), reraise=True,
                                                     wait=wait_exponential_jitter(initial=0.02, max=0.5),
                                                     stop=stop_after_delay(self._retry_secs)):
                with attempt_state:
                    return await attempt()
        except BrokerProblem as exc:
            raise _api_error(exc) from None

    async def history(self, group_id: str, *, before_seq: int = 0, after_seq: int | None = None,
                      limit: int) -> tuple[list[broker_pb2.Delivery], bool]:
        return await self._owner(group_id).history(group_id, before_seq=before_seq, after_seq=after_seq,
                                                   limit=limit)

    async def group_states(self, account_id: str, group_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
        return await self._any().group_states(account_id, group_ids)

    async def mark_read(self, account_id: str, group_id: str, seq: int) -> tuple[int, int]:
        return await self._owner(group_id).mark_read(account_id, group_id, seq)

    async def online(self, group_id: str) -> set[str]:
        return await self._owner(group_id).online(group_id)

    # where to ask -----------------------------------------------------------------

    def _owner(self, group_id: str) -> ZmqBroker:
        member = self._members.get(self.map.owner_of(group_id) or "")
        return member.broker if member is not None else self._any()

    def _any(self) -> ZmqBroker:
        if not self._members:
            self._refresh_soon()
            raise Unavailable("the message broker is unavailable, try again")
        return random.choice(list(self._members.values())).broker

    async def _everywhere(self, call: Callable[[ZmqBroker], Awaitable[object]], *, excuse_gone: bool = False) -> None:
        members = list(self._members.values())
        if not members:
            self._refresh_soon()
            raise Unavailable("the message broker is unavailable, try again")
        results = await asyncio.gather(*(call(m.broker) for m in members), return_exceptions=True)
        failed = [(m, r) for m, r in zip(members, results) if isinstance(r, BaseException)
                  and not (excuse_gone and self._members.get(m.node.name) is not m)]
        if failed:
            self._refresh_soon()
            member, error = failed[0]
            if not isinstance(error, Exception):
                raise error
            log.warning("broker %s: %s", member.node.name, error)
            raise error

    def _refresh_soon(self) -> None:
        """Something suggests the live set changed: ask now rather than at the next poll."""
        if not any(t.get_name() == "broker-cluster-refresh" and not t.done() for t in self._tasks):
            self._background(self._refresh(), "broker-cluster-refresh")

    async def _refresh(self) -> None:
        info = await self._ask_cluster()
        if info is not None:
            await self.apply(info)
