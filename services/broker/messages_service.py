"""The gRPC Messages service (chorus.messages.v1.Messages) for other backends.

It runs in the broker process but never touches the store or the counters
itself: the broker loop owns sequencing, so every call travels to the loop as
an envelope on the broker's own ROUTER (``BrokerClient``: a pool of DEALERs,
one in use per gRPC worker at a time, each greeted with Hello like a gateway)
and waits for the reply with a deadline. PostMessage is a SystemPost, so it
is stored, sequenced and fanned out exactly like a person's message;
ListMessages is a History.

Before either, the group must exist: ``MembershipGroups`` asks the membership
service (ListGroupMembers); an unknown group is NOT_FOUND, an unreachable
membership service UNAVAILABLE. Errors (errors.MessagesError) map to a gRPC
status once, at the servicer.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import grpc
import zmq

from chorus.common.brokerlink import ThreadBrokerLink
from chorus.common.grpcerrors import reports_errors
from chorus.common.grpcserver import create_grpc_server
from chorus.common.grpctls import ServerTls
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from chorus.common.curve import ClientCurve
from chorus.wire.conversation import BrokerTimeout, BrokerUnreachable, Malformed, Moved, NotReady, StoreUnavailable
from chorus.wire.pb import broker_pb2, membership_pb2, membership_pb2_grpc
from chorus.wire.pb import messages_pb2 as pb
from chorus.wire.pb import messages_pb2_grpc as pb_grpc

from .errors import GroupNotFound, InvalidArgument, MessagesError, Unavailable

__all__ = ["SERVICE_NAME", "BrokerClient", "OwnerClients", "MembershipGroups", "MessagesServicer", "create_server"]

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Messages"].full_name
INTERNAL_ERROR_DETAILS = "internal error in the messages service"

_STATUS_BY_ERROR: dict[type[MessagesError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    GroupNotFound: grpc.StatusCode.NOT_FOUND,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}
_reports_errors = reports_errors(MessagesError, _STATUS_BY_ERROR, log=log, internal_details=INTERNAL_ERROR_DETAILS)



class BrokerClient:
    """Requests to the broker loop from any gRPC worker thread.

    ZeroMQ sockets are not thread-safe, so each call borrows a link (one
    DEALER and its conversation, chorus.common.brokerlink.ThreadBrokerLink)
    from a pool (a queue hands it over between threads safely) and returns it
    after. A reply that arrives after its call gave up is late and dropped by
    the next borrower's conversation. The link says Hello first and, when the
    broker forgot us (UNKNOWN_GATEWAY, nothing was done), Hello and one retry.
    """

    def __init__(self, context: zmq.Context, endpoint: str, *, client_id: str, timeout_secs: float,
                 curve: ClientCurve | None = None) -> None:
        self._context, self._endpoint, self._client_id = context, endpoint, client_id
        self._curve = curve
        self._timeout_secs = timeout_secs
        self._idle: queue.SimpleQueue[ThreadBrokerLink] = queue.SimpleQueue()
        self._all: list[ThreadBrokerLink] = []
        self._lock = threading.Lock()
        self._closed = False

    def ask(self, deadline: float, expected: str, **kind):
        """The reply of the ``expected`` kind by ``deadline`` (monotonic); MessagesError otherwise."""
        link = self._borrow()
        try:
            return link.request(deadline, expected, **kind)
        except Malformed as exc:
            raise InvalidArgument(str(exc)) from None
        except (StoreUnavailable, BrokerTimeout, BrokerUnreachable) as exc:
            raise Unavailable(str(exc)) from None
        finally:
            self._idle.put(link)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for link in self._all:
                link.close()

    def _borrow(self) -> ThreadBrokerLink:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._closed:
                raise Unavailable("the messages service is stopping")
            # Each DEALER its own routing id: the ROUTER hands an id over to its newest holder.
            link = ThreadBrokerLink(self._context, self._endpoint, client_id=f"{self._client_id}-{len(self._all)}",
                                    timeout_secs=self._timeout_secs, immediate=False, curve=self._curve)
            self._all.append(link)
        return link


class OwnerClients:
    """Cluster: each request goes to the group's owner. It is asked of this broker first; a MOVED
    answer names the owner, whose router this broker's cluster view gives, and the request goes
    there (with its idempotency key, so a post is never stored twice). MOVED without a name, or
    NOT_READY, is asked again after a short pause, until the deadline."""

    def __init__(self, local: BrokerClient, make_remote: Callable[[str], BrokerClient]) -> None:
        self._local, self._make_remote = local, make_remote
        self._remotes: dict[str, BrokerClient] = {}
        self._lock = threading.Lock()

    def ask(self, deadline: float, expected: str, **kind):
        client = self._local
        retrying = Retrying(retry=retry_if_exception_type(_AskAgain), reraise=True,
                            wait=wait_exponential_jitter(initial=0.02, max=0.5),
                            stop=stop_after_delay(max(0.0, deadline - time.monotonic())))
        for attempt in retrying:
            with attempt:
                try:
                    return client.ask(deadline, expected, **kind)
                except Moved as moved:
                    client = self._owner(moved.moved_to, deadline) or self._local
                    raise _AskAgain(str(moved)) from None
                except NotReady as exc:
                    raise _AskAgain(str(exc)) from None
        raise Unavailable("no broker took the request in time")  # not reached: reraise

    def _owner(self, name: str, deadline: float) -> BrokerClient | None:
        if not name:
            return None
        info = self._local.ask(deadline, "cluster", cluster=broker_pb2.ClusterQuery())
        router = next((n.router for n in info.nodes if n.name == name), None)
        if router is None:
            return None
        with self._lock:
            if router not in self._remotes:
                self._remotes[router] = self._make_remote(router)
            return self._remotes[router]

    def close(self) -> None:
        self._local.close()
        with self._lock:
            for remote in self._remotes.values():
                remote.close()


class _AskAgain(Exception):
    pass


class MembershipGroups:
    """Does a group exist? Asked of the membership service (ListGroupMembers)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = membership_pb2_grpc.MembershipStub(channel)

    def check_exists(self, group_id: str, timeout_secs: float) -> None:
        """Return if the group exists; GroupNotFound, InvalidArgument or Unavailable otherwise."""
        try:
            self._stub.ListGroupMembers(membership_pb2.ListGroupMembersRequest(group_id=group_id, limit=1),
                                        timeout=timeout_secs)
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.NOT_FOUND:
                raise GroupNotFound(group_id) from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(exc.details()) from None
            log.warning("membership service: %s %s", code, exc.details())
            raise Unavailable("the membership service is unavailable; try again") from None


def _message(delivery: broker_pb2.Delivery) -> pb.Message:
    return pb.Message(group_id=delivery.group_id, seq=delivery.seq, ts_ms=delivery.ts_ms,
                      sender_id=delivery.sender.id, sender_username=delivery.sender.username,
                      sender_display_name=delivery.sender.display_name, text=delivery.text)


class MessagesServicer(pb_grpc.MessagesServicer):
    def __init__(self, broker: BrokerClient | OwnerClients, groups: MembershipGroups, *, timeout_secs: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._broker, self._groups = broker, groups
        self._timeout_secs, self._monotonic = timeout_secs, monotonic

    @_reports_errors
    def PostMessage(self, request: pb.PostMessageRequest, context) -> pb.PostMessageResponse:
        deadline = self._deadline(context)
        self._groups.check_exists(request.group_id, deadline - self._monotonic())
        post = broker_pb2.SystemPost(group_id=request.group_id, sender_name=request.sender_name,
                                     text=request.text, idempotency_key=request.idempotency_key)
        posted = self._ask(deadline, "posted", system_post=post)
        return pb.PostMessageResponse(group_id=posted.group_id, seq=posted.seq, ts_ms=posted.ts_ms,
                                      repeat=posted.repeat)

    @_reports_errors
    def ListMessages(self, request: pb.ListMessagesRequest, context) -> pb.ListMessagesResponse:
        deadline = self._deadline(context)
        forward = request.HasField("after_seq")
        if request.before_seq and forward:
            raise InvalidArgument("give before_seq or after_seq, not both")
        self._groups.check_exists(request.group_id, deadline - self._monotonic())
        history = broker_pb2.History(group_id=request.group_id, before_seq=request.before_seq,
                                     limit=request.limit)
        if forward:
            history.after_seq = request.after_seq
        page = self._ask(deadline, "messages", history=history)
        return pb.ListMessagesResponse(messages=[_message(d) for d in page.messages], more=page.more)

    def _deadline(self, context) -> float:
        remaining = context.time_remaining()
        budget = self._timeout_secs if remaining is None else min(self._timeout_secs, remaining)
        return self._monotonic() + budget

    def _ask(self, deadline: float, expected: str, **kind):
        return self._broker.ask(deadline, expected, **kind)


def create_server(address: str, servicer: MessagesServicer, *, max_workers: int,
                  tls: ServerTls | None = None) -> tuple[grpc.Server, int]:
    """A bound, not yet started server and its port (``address`` may use port 0); OSError if taken.
    ``tls``: mutual TLS and per-role authorisation (None: plaintext)."""
    return create_grpc_server(
        address,
        add_servicers=lambda server: pb_grpc.add_MessagesServicer_to_server(servicer, server),
        service_names=[SERVICE_NAME],
        max_workers=max_workers,
        tls=tls,
    )
