"""`chorus broker`: bind the sockets and serve until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys

import zmq

from chorus.common.ids import new_id

from .config import Settings
from .core import BrokerCore
from .server import BrokerServer

__all__ = ["run"]


def run(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s broker %(levelname)s %(message)s")
    core = BrokerCore(
        broker_id=new_id("b"),
        gateway_timeout_secs=settings.gateway_timeout_secs,
        max_text_chars=settings.max_text_chars,
    )
    server = BrokerServer(
        core,
        router_endpoint=settings.router_endpoint,
        pub_endpoint=settings.pub_endpoint,
        pub_hwm_msgs=settings.pub_hwm_msgs,
        tick_secs=settings.tick_secs,
    )
    try:
        router, pub = server.bind()
    except zmq.ZMQError as exc:
        print(f"broker: cannot bind {settings.router_endpoint} / {settings.pub_endpoint}: {exc}",
              file=sys.stderr)
        return 2
    stopping = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.append(True))
    print(f"broker listening: router {router} pub {pub}", file=sys.stderr, flush=True)
    try:
        server.run(lambda: bool(stopping))
    finally:
        server.close()
    return 0
