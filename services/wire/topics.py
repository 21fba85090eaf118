"""PUB/SUB topic names, shared by the broker and the gateways.

ZeroMQ subscriptions match by prefix, so every group topic ends in NUL: the
subscription for group "g_1" must not also match group "g_10".
"""

__all__ = ["CONTROL_TOPIC", "CLUSTER_TOPIC", "BARRIER_PREFIX", "group_topic", "barrier_topic", "group_of_topic"]

GROUP_PREFIX = b"m:"
CONTROL_TOPIC = b"c:"
CLUSTER_TOPIC = b"k:"  # ClusterInfo, published when a broker sees the live brokers change
BARRIER_PREFIX = b"~"


def group_topic(group_id: str) -> bytes:
    return GROUP_PREFIX + group_id.encode() + b"\0"


def group_of_topic(topic: bytes) -> str | None:
    """The group id of a group topic, or None for any other topic."""
    if topic.startswith(GROUP_PREFIX) and topic.endswith(b"\0"):
        return topic[len(GROUP_PREFIX):-1].decode()
    return None


def barrier_topic(nonce: bytes) -> bytes:
    return BARRIER_PREFIX + nonce
