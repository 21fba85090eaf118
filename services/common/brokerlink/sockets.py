"""The DEALER every broker client uses, with the options all of them need."""

from __future__ import annotations

import zmq

from chorus.common.curve import ClientCurve

__all__ = ["dealer"]


def dealer(context: zmq.Context, endpoint: str, *, client_id: str, immediate: bool = True,
           curve: ClientCurve | None = None) -> zmq.Socket:
    """A connected DEALER named ``client_id`` (the broker's ROUTER knows clients by it).

    IMMEDIATE (the default) queues nothing for a broker that is not connected:
    a request then waits to be sent (asyncio) or fails at once (NOBLOCK), so a
    post the person was told failed is never delivered minutes later. A bad
    endpoint raises zmq.ZMQError here, at start. With ``curve`` the connection is
    encrypted and the broker knows us by our key (chorus.common.curve).
    """
    socket = context.socket(zmq.DEALER)
    try:
        socket.setsockopt(zmq.ROUTING_ID, client_id.encode())
        socket.setsockopt(zmq.IMMEDIATE, 1 if immediate else 0)
        socket.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(socket)
        socket.connect(endpoint)
    except zmq.ZMQError:
        socket.close(linger=0)
        raise
    return socket
