"""Drivers of the broker conversation (chorus.wire.conversation): they only move its bytes.

    AsyncBrokerLink    asyncio: many requests in flight, a heartbeat, re-registration (gateways)
    ThreadBrokerLink   blocking: one DEALER used by one thread at a time (the membership
                       notifier's thread; each gRPC worker of the Messages service borrows one)

Both raise chorus.wire.conversation's errors; each service maps them to its own once.
Retry rules stay with the callers, as data (``unknown_gateway_retries``) or a tenacity policy.
"""

from .aio import AsyncBrokerLink
from .sockets import dealer
from .threaded import ThreadBrokerLink

__all__ = ["AsyncBrokerLink", "ThreadBrokerLink", "dealer"]
