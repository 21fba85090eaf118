"""The broker conversation on an asyncio loop: many requests in flight, a heartbeat, re-registration.

One DEALER, one reader task resolving each request's future from the
conversation's answers, one task watching for the connection to drop (the
requests out then fail at once, ConnectionLost), and the heartbeat. Each request waits at most its
deadline (the conversation's ``timeout_secs``): sending included, because with
IMMEDIATE a request for an absent broker waits to be sent rather than queue.

``keep_alive(on_fresh)`` (run by the owner as a task) says Hello every
``heartbeat_secs``, which keeps the broker from expiring us as a silent
client. When a Welcome says ``fresh`` (the broker restarted or expired us),
``on_fresh`` registers again what the broker forgot; it is retried on every
heartbeat until it succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import zmq
import zmq.asyncio
from tenacity import AsyncRetrying, retry_if_result, stop_after_delay, wait_fixed
from zmq.utils.monitor import parse_monitor_message

from chorus.common.curve import ClientCurve
from chorus.wire.conversation import (Answer, BrokerProblem, BrokerRefused, BrokerTimeout, BrokerUnreachable,
                                      ConnectionLost, Conversation, NotReady)

from .sockets import dealer

__all__ = ["AsyncBrokerLink"]

log = logging.getLogger(__name__)


class AsyncBrokerLink:
    def __init__(self, endpoint: str, *, client_id: str, timeout_secs: float, heartbeat_secs: float,
                 retry_on: tuple[type[BrokerRefused], ...] = (NotReady,), retry_pause_secs: float = 0.05,
                 curve: ClientCurve | None = None, context: zmq.asyncio.Context | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.endpoint = endpoint
        self.conversation = Conversation(client_id, timeout_secs=timeout_secs)
        self._heartbeat_secs = heartbeat_secs
        self._curve = curve
        # Refusals that say "nothing was done, ask again shortly": retried within the deadline.
        self._retry_on = retry_on
        self._retry_pause_secs = retry_pause_secs
        self._context = context or zmq.asyncio.Context.instance()
        self._monotonic = monotonic
        self._waiting: dict[int, asyncio.Future[Answer]] = {}
        self._sending: dict[int, asyncio.Future] = {}  # sends waiting for a connected broker
        self._abandoned: set[int] = set()
        self._tasks: list[asyncio.Task] = []
        self._socket: zmq.asyncio.Socket | None = None

    @property
    def broker_id(self) -> str | None:
        return self.conversation.broker_id

    async def start(self) -> None:
        self._socket = dealer(self._context, self.endpoint, client_id=self.conversation.client_id,
                              curve=self._curve)
        monitor = self._socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._tasks = [asyncio.create_task(self._replies(), name="broker-replies"),
                       asyncio.create_task(self._disconnects(monitor), name="broker-disconnects")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._socket is not None:
            self._socket.disable_monitor()
            self._socket.close(linger=0)

    async def ask(self, expected: str, **kind):
        """The reply of the ``expected`` kind to one request; a BrokerProblem otherwise."""
        return (await self.request(**kind)).result(expected)

    async def request(self, **kind) -> Answer:
        """Send one request (e.g. ``post=broker_pb2.Post(...)``) and wait for its answer; a refusal
        of a ``retry_on`` kind is asked again, every ``retry_pause_secs``, until the deadline."""
        retrying = AsyncRetrying(
            retry=retry_if_result(lambda answer: isinstance(answer.error, self._retry_on)),
            wait=wait_fixed(self._retry_pause_secs),
            stop=stop_after_delay(self.conversation.timeout_secs),
            retry_error_callback=lambda state: state.outcome.result(),  # the last refusal, as it is
        )
        return await retrying(self._exchange, kind)

    async def _exchange(self, kind: dict) -> Answer:
        now = self._monotonic()
        outgoing = self.conversation.request(now, **kind)
        future = asyncio.get_running_loop().create_future()
        self._waiting[outgoing.request_id] = future
        request_id = outgoing.request_id
        try:
            async with asyncio.timeout(self.conversation.timeout_secs):
                sending = self._sending[request_id] = self._socket.send(outgoing.payload)
                try:
                    await sending
                except asyncio.CancelledError:
                    if request_id in self._abandoned:  # never sent: safe to ask someone else
                        raise BrokerUnreachable("the message broker left") from None
                    raise
                finally:
                    self._sending.pop(request_id, None)
                return await future
        except TimeoutError:
            raise BrokerTimeout("the message broker did not answer in time") from None
        finally:
            self._waiting.pop(request_id, None)
            self._abandoned.discard(request_id)
            self.conversation.forget(request_id)

    def abandon(self) -> None:
        """The broker is known to be gone (a cluster saw it leave): fail every request out now,
        BrokerUnreachable for those not yet sent, ConnectionLost for those sent, instead of
        letting each wait for its deadline."""
        for request_id, sending in list(self._sending.items()):
            self._abandoned.add(request_id)
            sending.cancel()
        for request_id, future in self._waiting.items():
            if not future.done() and request_id not in self._abandoned:
                future.set_exception(ConnectionLost("the message broker left"))

    async def _replies(self) -> None:
        while True:
            answer = self.conversation.receive(await self._socket.recv())
            if answer is None:
                continue
            future = self._waiting.get(answer.request_id)
            if future is not None and not future.done():
                future.set_result(answer)

    async def _disconnects(self, monitor: zmq.asyncio.Socket) -> None:
        """When the connection drops, every request out is answered ConnectionLost at once: the
        broker that had it is gone (a restarted one knows nothing of it), so waiting for the
        deadline would only make the person wait. It may have been done; a page retries its
        post with the same idempotency key."""
        try:
            while True:
                event = parse_monitor_message(await monitor.recv_multipart())
                if event["event"] != zmq.EVENT_DISCONNECTED:
                    continue
                self.conversation.needs_hello = True
                waiting = [f for f in self._waiting.values() if not f.done()]
                if waiting:
                    log.warning("connection to the broker %s dropped with %d requests out", self.endpoint,
                                len(waiting))
                for future in waiting:
                    future.set_exception(ConnectionLost("the connection to the message broker dropped"))
        finally:
            monitor.close(linger=0)

    async def keep_alive(self, on_fresh: Callable[[], Awaitable[None]]) -> None:
        """Hello every heartbeat, and ``on_fresh`` after a broker that forgot us (see module doc)."""
        while True:
            known = self.broker_id
            try:
                await self.ask("welcome", hello=self.conversation.hello_message())
            except BrokerProblem:
                log.warning("broker %s not answering", self.endpoint)
            else:
                if self.broker_id != known:
                    log.info("broker %s is %s", self.endpoint, self.broker_id)
            if self.conversation.reregistration_due:
                try:
                    await on_fresh()
                    self.conversation.reregistered()
                except Exception:
                    log.exception("registering again with the broker failed; retrying")
            await asyncio.sleep(self._heartbeat_secs)
