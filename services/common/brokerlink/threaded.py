"""The broker conversation on one blocking DEALER, used by one thread at a time.

Users: the membership notifier's sender thread (one link for its life) and the
gRPC Messages service (a pool of links; each worker borrows one per call).

``request`` is the whole exchange for callers that give up on a timeout:
Hello first when the conversation needs one, then the request, and for an
UNKNOWN_GATEWAY refusal (the broker forgot us; nothing was done) Hello and the
same request again, ``unknown_gateway_retries`` times. Callers with their own
delivery rules (the notifier resends one request under its id until answered)
use the steps: ``submit``, ``resubmit``, ``wait``, ``say_hello``.

While ``wait`` waits for one answer, answers to other requests still pending
are kept (``take_answer``), so the late answer to an earlier attempt counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import zmq

from chorus.common.curve import ClientCurve
from chorus.wire.conversation import Answer, BrokerTimeout, BrokerUnreachable, Conversation, UnknownGateway

from .sockets import dealer

__all__ = ["ThreadBrokerLink"]


class ThreadBrokerLink:
    def __init__(self, context: zmq.Context, endpoint: str, *, client_id: str, timeout_secs: float,
                 immediate: bool = True, unknown_gateway_retries: int = 1, curve: ClientCurve | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.endpoint = endpoint
        self.conversation = Conversation(client_id, timeout_secs=timeout_secs)
        self._socket = dealer(context, endpoint, client_id=client_id, immediate=immediate, curve=curve)
        self._unknown_gateway_retries = unknown_gateway_retries
        self._monotonic = monotonic
        self._kept: dict[int, Answer] = {}

    def close(self) -> None:
        self._socket.close(linger=0)

    # the whole exchange ---------------------------------------------------------

    def request(self, deadline: float, expected: str, **kind):
        """The reply of the ``expected`` kind, by ``deadline`` (monotonic); a BrokerProblem otherwise."""
        for _ in range(1 + self._unknown_gateway_retries):
            if self.conversation.needs_hello and not self.say_hello(deadline):
                raise BrokerTimeout("the message broker did not answer in time")
            request_id = self.submit(deadline, **kind)
            answer = self.wait(request_id, deadline)
            if answer is None:
                self.conversation.forget(request_id)
                raise BrokerTimeout("the message broker did not answer in time")
            if not isinstance(answer.error, UnknownGateway):
                return answer.result(expected)
        raise answer.error

    # steps ---------------------------------------------------------------------

    def say_hello(self, deadline: float) -> Answer | None:
        """Hello; its Welcome answer by ``deadline``, or None (no broker, no answer, refused)."""
        outgoing = self.conversation.hello(self._monotonic(), deadline=deadline)
        try:
            self._send(outgoing, deadline)
        except BrokerUnreachable:
            self.conversation.forget(outgoing.request_id)
            return None
        answer = self.wait(outgoing.request_id, deadline)
        self.conversation.forget(outgoing.request_id)
        return answer if answer is not None and answer.kind == "welcome" else None

    def submit(self, deadline: float, **kind) -> int:
        """Send a new request; its id. BrokerUnreachable when no broker is connected by ``deadline``."""
        outgoing = self.conversation.request(self._monotonic(), deadline=deadline, **kind)
        try:
            return self._send(outgoing, deadline)
        except BrokerUnreachable:
            self.conversation.forget(outgoing.request_id)
            raise

    def resubmit(self, request_id: int, deadline: float) -> None:
        """Send the pending request ``request_id`` again under the same id."""
        self._send(self.conversation.resend(request_id, self._monotonic(), deadline=deadline), deadline)

    def wait(self, request_id: int, deadline: float) -> Answer | None:
        """The answer to ``request_id`` by ``deadline``, or None (it stays pending: a later
        answer can still be taken). Answers to other pending requests are kept meanwhile."""
        while True:
            answer = self._kept.pop(request_id, None)
            if answer is not None:
                return answer
            left = deadline - self._monotonic()
            if left <= 0 or not self._socket.poll(max(1, int(left * 1000)), zmq.POLLIN):
                self.conversation.needs_hello = True  # the broker may have restarted meanwhile
                return None
            try:
                payload = self._socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                continue
            answer = self.conversation.receive(payload)
            if answer is not None:
                self._kept[answer.request_id] = answer

    def take_answer(self, request_id: int) -> Answer | None:
        """An answer to ``request_id`` that arrived while waiting for another, if any."""
        return self._kept.pop(request_id, None)

    def forget(self, request_id: int) -> None:
        self._kept.pop(request_id, None)
        self.conversation.forget(request_id)

    def _send(self, outgoing, deadline: float) -> int:
        """Send once a broker is connected (with IMMEDIATE, POLLOUT means one is), by ``deadline``."""
        left_ms = max(0, int((deadline - self._monotonic()) * 1000))
        try:
            if not self._socket.poll(left_ms, zmq.POLLOUT):
                raise zmq.Again()
            self._socket.send(outgoing.payload, zmq.NOBLOCK)
        except zmq.Again:
            raise BrokerUnreachable(f"no broker connected at {self.endpoint}") from None
        return outgoing.request_id

