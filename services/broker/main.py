"""`chorus broker`: open the message store, bind ZeroMQ and gRPC, serve until SIGINT/SIGTERM.

On a signal: the gRPC Messages service stops first (in-flight calls still get
their answers from the loop, for up to ``grace_secs``), then the loop stores
what it has accepted (a final flush) and the process exits 0.

Once serving it writes its readiness line (chorus.common.readiness) on stdout:
``CHORUS-READY {"service": "broker", "pid": ..., "router": ENDPOINT, "pub": ENDPOINT,
"grpc": "HOST:PORT"}`` with the real endpoints (port 0 replaced).

Exit codes: 0 after a signalled shutdown, 1 when the database cannot be
opened, 2 for a bad database URL, unusable keys, or an address that cannot be bound.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

import grpc
import zmq
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from chorus.common import readiness
from chorus.common.config import join_host_port, parse_host_port
from chorus.common.db import create_db_engine
from chorus.common.curve import ServerCurve
from chorus.common.grpctls import ClientTls, ServerTls, channel
from chorus.common.keysdir import KeysError, service_folder
from chorus.common.ids import new_id

from chorus.wire.cluster import Node

from .cluster_store import ClusterStore
from .clustering import ClusterMember, advertised
from .config import Settings
from .core import BrokerCore
from .messages_service import BrokerClient, MembershipGroups, MessagesServicer, OwnerClients, create_server
from .server import BrokerServer
from .storage import MessageStore, migrate, use_full_sync

__all__ = ["run"]


def run(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s broker %(levelname)s %(message)s")
    try:
        engine = create_db_engine(settings.database_url)
    except ValueError as exc:
        return _fail(str(exc), code=2)
    if settings.durable_sync:
        use_full_sync(engine)
    try:
        migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        return _fail(f"cannot open database {_safe(settings.database_url)}: {exc.orig or exc}", code=1)
    if settings.cluster_node and engine.dialect.name != "postgresql":
        engine.dispose()
        return _fail("a cluster of brokers (--cluster-node) shares a PostgreSQL database: "
                     "give --database-url postgresql://...", code=2)
    cluster_tables = ClusterStore(engine) if settings.cluster_node else None
    try:
        return _serve(settings, MessageStore(engine), cluster_tables)
    finally:
        if cluster_tables is not None:
            cluster_tables.close()
        engine.dispose()


def _serve(settings: Settings, store: MessageStore, cluster_tables: ClusterStore | None) -> int:
    try:
        keys = service_folder(settings.keys_dir, settings.insecure_plaintext)
        curve, server_tls, client_tls = ((ServerCurve.load(keys), ServerTls.load(keys), ClientTls.load(keys))
                                         if keys else (None, None, None))
    except KeysError as exc:
        return _fail(str(exc), code=2)
    broker_id = new_id("b")
    member = None
    if cluster_tables is not None:  # where we are reached is known once bound (below)
        member = ClusterMember(cluster_tables, Node(settings.cluster_node, "", ""), broker_id,
                               lease_secs=settings.lease_secs, renew_secs=settings.lease_renew_secs)
    core = BrokerCore(
        broker_id=broker_id,
        store=store,
        gateway_timeout_secs=settings.gateway_timeout_secs,
        max_text_chars=settings.max_text_chars,
        max_history_page=settings.max_history_page,
        key_retention_secs=settings.key_retention_secs,
        cluster=member,
    )
    server = BrokerServer(
        core,
        router_endpoint=settings.router_endpoint,
        pub_endpoint=settings.pub_endpoint,
        pub_hwm_msgs=settings.pub_hwm_msgs,
        tick_secs=settings.tick_secs,
        curve=curve,
        hand_over_secs=settings.hand_over_secs if member is not None else 0.0,
    )
    membership = channel(settings.membership_address, client_tls)
    client = None
    try:
        try:
            router, pub = server.bind()
            internal = server.bind_internal(f"chorus-broker-{broker_id}")
        except zmq.ZMQError as exc:
            return _fail(f"cannot bind {settings.router_endpoint} / {settings.pub_endpoint}: {exc}", code=2)
        client = BrokerClient(server.context, internal, client_id=f"{broker_id}-grpc",
                              timeout_secs=settings.backend_timeout_secs)
        if member is not None:  # a post for a group another broker owns is forwarded to it
            client = OwnerClients(client, lambda router: BrokerClient(
                server.context, router, client_id=f"{broker_id}-fwd", timeout_secs=settings.backend_timeout_secs,
                curve=curve.as_client() if curve is not None else None))
        servicer = MessagesServicer(client, MembershipGroups(membership), timeout_secs=settings.backend_timeout_secs)
        try:
            grpc_server, port = create_server(settings.grpc_listen, servicer, max_workers=settings.max_workers,
                                            tls=server_tls)
        except OSError as exc:
            return _fail(f"--grpc-listen: {exc}", code=2)
        grpc_server.start()
        grpc_address = join_host_port(parse_host_port(settings.grpc_listen)[0], port)
        if member is not None:
            host = settings.advertise_host
            member.me = Node(settings.cluster_node, advertised(router, host), advertised(pub, host),
                             advertised(grpc_address, host))
        should_stop = _stop_after_grpc(grpc_server, settings.grace_secs)  # handlers before announcing
        print(f"broker listening: router {router} pub {pub} grpc {grpc_address}", file=sys.stderr, flush=True)
        readiness.announce("broker", settings.ready_file, router=router, pub=pub, grpc=grpc_address,
                           **({"node": settings.cluster_node} if member is not None else {}))
        server.run(should_stop)
        return 0
    finally:
        if client is not None:
            client.close()
        membership.close()
        server.close()


def _stop_after_grpc(grpc_server: grpc.Server, grace_secs: float):
    """A should_stop for the loop: after SIGINT/SIGTERM, stop gRPC (the loop keeps answering
    its in-flight calls meanwhile) and report True once it has stopped."""
    signalled = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: signalled.set())
    stopped: list[threading.Event] = []

    def should_stop() -> bool:
        if not signalled.is_set():
            return False
        if not stopped:
            stopped.append(grpc_server.stop(grace_secs))
        return stopped[0].is_set()

    return should_stop


def _fail(message: str, *, code: int) -> int:
    print(f"broker: {message}", file=sys.stderr, flush=True)
    return code


def _safe(url: str) -> str:
    """``url`` with any password masked, for messages."""
    return make_url(url).render_as_string(hide_password=True)
