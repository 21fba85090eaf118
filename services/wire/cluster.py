"""Which broker owns which group: rendezvous hashing over the live brokers, the same everywhere.

Every broker, gateway and membership notifier computes a group's owner the
same way from the same list of live brokers (learnt from the brokers'
``Cluster`` answers), so they agree without asking anyone per group:

    owner(group) = the live node with the highest hash(node, group)

When a node joins, only the groups it now wins move to it; when a node
leaves, only its groups move, each to its runner-up. Nothing here is
authoritative: ownership itself is a row in the database with an epoch
(chorus.broker.ownership), and a broker that is asked about a group it does
not own answers MOVED with the owner it knows, which clients follow.

No I/O: plain values in, plain values out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Node", "ClusterMap", "rendezvous_owner"]


@dataclass(frozen=True, slots=True)
class Node:
    """A live broker and where to reach it."""

    name: str
    router: str      # ZeroMQ ROUTER endpoint (requests)
    pub: str         # ZeroMQ PUB endpoint (group traffic)
    grpc: str = ""   # its Messages gRPC address, for other backends
    incarnation: str = ""  # new each start of the broker


def _score(node: str, group_id: str) -> int:
    digest = hashlib.blake2b(f"{node}\0{group_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_owner(group_id: str, nodes: Iterable[str]) -> str | None:
    """The node that should own ``group_id`` among ``nodes`` (None when there is none)."""
    best, best_score = None, -1
    for node in nodes:
        score = _score(node, group_id)
        if score > best_score or (score == best_score and node > best):
            best, best_score = node, score
    return best


class ClusterMap:
    """The live brokers as one client (or broker) last heard them, with owners by rendezvous."""

    def __init__(self, nodes: Iterable[Node] = ()) -> None:
        self.nodes: dict[str, Node] = {node.name: node for node in nodes}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClusterMap) and self.nodes == other.nodes

    def __repr__(self) -> str:
        return f"ClusterMap({sorted(self.nodes)})"

    def owner_of(self, group_id: str) -> str | None:
        return rendezvous_owner(group_id, self.nodes)

    def moved(self, other: "ClusterMap", group_ids: Iterable[str]) -> list[str]:
        """The groups among ``group_ids`` whose owner differs between this map and ``other``."""
        return [g for g in group_ids if self.owner_of(g) != other.owner_of(g)]
