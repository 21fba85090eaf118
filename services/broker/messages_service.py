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

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable

import grpc
import zmq

from chorus.common.grpcerrors import reports_errors
from chorus.common.grpcserver import create_grpc_server
from chorus.wire.pb import broker_pb2, membership_pb2, membership_pb2_grpc
from chorus.wire.pb import messages_pb2 as pb
from chorus.wire.pb import messages_pb2_grpc as pb_grpc

from .errors import GroupNotFound, InvalidArgument, MessagesError, Unavailable

__all__ = ["SERVICE_NAME", "BrokerClient", "MembershipGroups", "MessagesServicer", "create_server"]

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Messages"].full_name
INTERNAL_ERROR_DETAILS = "internal error in the messages service"

_STATUS_BY_ERROR: dict[type[MessagesError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    GroupNotFound: grpc.StatusCode.NOT_FOUND,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}
_reports_errors = reports_errors(MessagesError, _STATUS_BY_ERROR, log=log, internal_details=INTERNAL_ERROR_DETAILS)

_Code = broker_pb2.Failure.Code
# A broker Failure as the caller's fault or as "try again"; anything else is a bug (INTERNAL).
_ERROR_BY_FAILURE: dict[int, type[MessagesError]] = {
    _Code.BAD_REQUEST: InvalidArgument,
    _Code.UNAVAILABLE: Unavailable,
}


class BrokerClient:
    """Requests to the broker loop from any thread.

    ZeroMQ sockets are not thread-safe, so each call borrows a DEALER from a
    pool (a queue hands it over between threads safely) and returns it after;
    a reply that arrives after its call gave up is recognised by request_id and
    dropped by the next borrower. A gateway silent past the broker's timeout is
    forgotten there; the UNKNOWN_GATEWAY answer (nothing was done) is met with
    Hello and one retry.
    """

    def __init__(self, context: zmq.Context, endpoint: str, *, client_id: str) -> None:
        self._context, self._endpoint, self._client_id = context, endpoint, client_id
        self._idle: queue.SimpleQueue[zmq.Socket] = queue.SimpleQueue()
        self._all: list[zmq.Socket] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closed = False

    def request(self, deadline: float, **kind) -> broker_pb2.BrokerReply:
        """Send one GatewayRequest and wait (until ``deadline``, monotonic) for its reply."""
        socket, fresh = self._borrow()
        try:
            if fresh:
                self._hello(socket, deadline)
            reply = self._exchange(socket, deadline, kind)
            if reply.WhichOneof("kind") == "failure" and reply.failure.code == _Code.UNKNOWN_GATEWAY:
                self._hello(socket, deadline)
                reply = self._exchange(socket, deadline, kind)
            return reply
        finally:
            self._idle.put(socket)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for socket in self._all:
                socket.close(linger=0)

    def _hello(self, socket: zmq.Socket, deadline: float) -> None:
        self._exchange(socket, deadline, {"hello": broker_pb2.Hello(gateway_id=self._client_id)})

    def _borrow(self) -> tuple[zmq.Socket, bool]:
        """An idle DEALER, or a new one (True: it has not said Hello yet)."""
        try:
            return self._idle.get_nowait(), False
        except queue.Empty:
            pass
        with self._lock:
            if self._closed:
                raise Unavailable("the messages service is stopping")
            socket = self._context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            socket.connect(self._endpoint)
            self._all.append(socket)
        return socket, True

    def _exchange(self, socket: zmq.Socket, deadline: float, kind: dict) -> broker_pb2.BrokerReply:
        request_id = next(self._ids)
        socket.send(broker_pb2.GatewayRequest(request_id=request_id, **kind).SerializeToString())
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0 or not socket.poll(remaining_ms):
                raise Unavailable("the broker did not answer in time")
            reply = broker_pb2.BrokerReply.FromString(socket.recv())
            if reply.request_id == request_id:
                return reply
            # a late reply to an earlier call that gave up: not ours, keep waiting


class MembershipGroups:
    """Does a group exist? Asked of the membership service (ListGroupMembers)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = membership_pb2_grpc.MembershipStub(channel)

    def check_exists(self, group_id: str, timeout_secs: float) -> None:
        """Return if the group exists; GroupNotFound, InvalidArgument or Unavailable otherwise."""
        try:
            self._stub.ListGroupMembers(membership_pb2.ListGroupMembersRequest(group_id=group_id),
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
    def __init__(self, broker: BrokerClient, groups: MembershipGroups, *, timeout_secs: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._broker, self._groups = broker, groups
        self._timeout_secs, self._monotonic = timeout_secs, monotonic

    @_reports_errors
    def PostMessage(self, request: pb.PostMessageRequest, context) -> pb.PostMessageResponse:
        deadline = self._deadline(context)
        self._groups.check_exists(request.group_id, deadline - self._monotonic())
        post = broker_pb2.SystemPost(group_id=request.group_id, sender_name=request.sender_name,
                                     text=request.text)
        posted = self._ask(deadline, "posted", system_post=post)
        return pb.PostMessageResponse(group_id=posted.group_id, seq=posted.seq, ts_ms=posted.ts_ms)

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
        reply = self._broker.request(deadline, **kind)
        got = reply.WhichOneof("kind")
        if got == expected:
            return getattr(reply, expected)
        if got == "failure":
            error = _ERROR_BY_FAILURE.get(reply.failure.code)
            if error is not None:
                raise error(reply.failure.message)
        raise RuntimeError(f"broker answered {got} ({reply.failure.message!r}) to a {expected} request")


def create_server(address: str, servicer: MessagesServicer, *, max_workers: int) -> tuple[grpc.Server, int]:
    """A bound, not yet started server and its port (``address`` may use port 0); OSError if taken."""
    return create_grpc_server(
        address,
        add_servicers=lambda server: pb_grpc.add_MessagesServicer_to_server(servicer, server),
        service_names=[SERVICE_NAME],
        max_workers=max_workers,
    )
