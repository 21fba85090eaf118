"""What the core hands the driver to send: replies to one gateway, publications to all."""

from __future__ import annotations

from dataclasses import dataclass

from chorus.wire.pb import broker_pb2

from .errors import BrokerError

__all__ = ["Reply", "Publish", "Output", "reply", "failure"]


@dataclass(frozen=True, slots=True)
class Reply:
    identity: bytes
    payload: bytes


@dataclass(frozen=True, slots=True)
class Publish:
    topic: bytes
    payload: bytes


Output = Reply | Publish


def reply(identity: bytes, request_id: int, **kind) -> Reply:
    """A BrokerReply with ``request_id`` and one of its kinds, e.g. ``done=broker_pb2.Done()``."""
    return Reply(identity, broker_pb2.BrokerReply(request_id=request_id, **kind).SerializeToString())


def failure(identity: bytes, request_id: int, exc: BrokerError) -> Reply:
    return reply(identity, request_id, failure=broker_pb2.Failure(
        code=exc.code, message=str(exc), moved_to=getattr(exc, "moved_to", "") or ""))
