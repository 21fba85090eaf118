"""This broker as a member of a cluster: heartbeats, the live set, hand-overs. No sockets.

The core calls ``tick`` on every loop tick; every ``renew_secs`` it renews
our lease in the database (ClusterTables.heartbeat), which also tells us the
live brokers. Then:
- groups we own whose rendezvous winner is now another node are released,
  after the pending posts were flushed (the core does that first), so a
  joining broker gets its share and the clients find the winner free;
- when the live set changed (or every ``announce_secs`` anyway, for clients
  that missed one) the ClusterInfo is published on CLUSTER_TOPIC, which every
  gateway subscribes to: that is how clients learn where to send each group.

``leave`` is the graceful stop (SIGTERM): we first stop taking posts
(``leaving``: every post is answered MOVED to the winner among the others),
flush, give every group and our lease back, and announce a ClusterInfo
without us, so gateways move at once and no post is refused.

A failing database only delays the next heartbeat: we keep serving what we
own, and the fence (storage.append_batch) is what makes that safe.
"""

from __future__ import annotations

import logging
import socket
from chorus.wire.cluster import ClusterMap, Node
from chorus.wire.pb import broker_pb2
from chorus.wire.topics import CLUSTER_TOPIC

from .errors import StoreUnavailable
from .outputs import Publish
from .ownership import Ownership
from .records import ClusterTables

__all__ = ["ClusterMember", "advertised", "DEFAULT_LEASE_SECS", "DEFAULT_RENEW_SECS", "DEFAULT_ANNOUNCE_SECS", "cluster_info"]

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECS = 5.0     # a paused or cut-off broker loses its groups this long after its last renewal
DEFAULT_RENEW_SECS = 0.5     # how often the lease is renewed (and the live set re-read)
DEFAULT_ANNOUNCE_SECS = 5.0  # ClusterInfo is published at least this often


def _node(n: Node) -> broker_pb2.BrokerNode:
    return broker_pb2.BrokerNode(name=n.name, router=n.router, pub=n.pub, grpc=n.grpc, incarnation=n.incarnation)


def cluster_info(nodes, left: Node | None = None) -> broker_pb2.ClusterInfo:
    info = broker_pb2.ClusterInfo(nodes=[_node(n) for n in sorted(nodes, key=lambda n: n.name)])
    if left is not None:
        info.left.CopyFrom(_node(left))
    return info


class ClusterMember:
    def __init__(self, tables: ClusterTables, me: Node, incarnation: str, *, lease_secs: float = DEFAULT_LEASE_SECS,
                 renew_secs: float = DEFAULT_RENEW_SECS, announce_secs: float = DEFAULT_ANNOUNCE_SECS) -> None:
        if renew_secs >= lease_secs:
            raise ValueError(f"the lease ({lease_secs}s) must be longer than its renewal interval ({renew_secs}s)")
        self.tables = tables
        self.me = me
        self.ownership = Ownership(me.name, incarnation)
        self.leaving = False
        self._lease_ms = int(lease_secs * 1000)
        self._renew_secs = renew_secs
        self._announce_secs = announce_secs
        self._next_renewal = float("-inf")
        self._next_announce = float("-inf")

    @property
    def cluster(self) -> ClusterMap:
        return self.ownership.cluster

    def due(self, now: float) -> bool:
        return not self.leaving and now >= self._next_renewal

    def renew(self, now: float) -> list[str] | None:
        """Heartbeat: the owned groups another node now wins, to release (``release``) once
        their pending posts are flushed; None when the database could not be reached."""
        self._next_renewal = now + self._renew_secs
        try:
            live = self.tables.heartbeat(self.me, self.ownership.incarnation, self._lease_ms)
        except StoreUnavailable as exc:
            log.warning("cannot renew our lease: %s", exc)
            return None
        after = ClusterMap(live)
        if after != self.cluster:
            log.info("live brokers: %s", ", ".join(sorted(after.nodes)) or "none")
            self._next_announce = now  # announce at once
        return self.ownership.new_cluster(after)

    def release(self, groups: list[str]) -> None:
        try:
            self.tables.release(groups, self.ownership.node, self.ownership.incarnation)
        except StoreUnavailable as exc:  # they stay ours in the database until our lease ends
            log.warning("cannot release %d groups: %s", len(groups), exc)
        self.ownership.lost(groups)
        log.info("released %d groups to the brokers that now win them", len(groups))

    def announce_due(self, now: float) -> Publish | None:
        """The ClusterInfo to publish, when the live set changed or ``announce_secs`` passed."""
        if now < self._next_announce or not self.cluster.nodes:
            return None
        self._next_announce = now + self._announce_secs
        return self.announcement()

    def announcement(self) -> Publish:
        return Publish(CLUSTER_TOPIC, self.info().SerializeToString())

    def info(self) -> broker_pb2.ClusterInfo:
        """The live brokers as we last read them; while leaving, without us and saying so."""
        if not self.leaving:
            return cluster_info(self.cluster.nodes.values())
        me = Node(self.me.name, self.me.router, self.me.pub, self.me.grpc, self.ownership.incarnation)
        return cluster_info([n for n in self.cluster.nodes.values() if n.name != self.me.name], left=me)

    def moved_to(self, group_id: str) -> str | None:
        """Where a post for ``group_id`` goes while we leave: the winner among the others."""
        return ClusterMap(n for n in self.cluster.nodes.values() if n.name != self.me.name).owner_of(group_id)

    def leave(self) -> list:
        """Give everything back (the caller flushed first); the announcement without us."""
        self.leaving = True
        try:
            self.tables.leave(self.ownership.node, self.ownership.incarnation)
        except StoreUnavailable as exc:
            log.warning("cannot hand our groups over (they move when our lease ends): %s", exc)
        self.ownership.lost(list(self.ownership.owned))
        return [self.announcement()]


def advertised(address: str, host: str = "") -> str:
    """``address`` (a bound ZeroMQ endpoint or HOST:PORT) as others reach it: with ``host`` when
    given, else with this machine's name when it is bound to every interface."""
    scheme, sep, rest = address.rpartition("://")
    bound, _, port = rest.rpartition(":")
    if not host:
        host = socket.gethostname() if bound.strip("[]") in ("0.0.0.0", "::", "*", "") else bound
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}{sep}{host}:{port}"
