"""The membership process: open the database, connect to the broker, bind, serve until SIGINT/SIGTERM.

Once serving it writes its readiness line (chorus.common.readiness) on stdout:
``CHORUS-READY {"service": "membership", "pid": ..., "grpc": "HOST:PORT"}``.

Exit codes: 0 after a signalled shutdown, 1 when the database cannot be
opened, 2 for a bad database URL, a broker endpoint ZeroMQ refuses, unusable
keys, or an address that cannot be bound. A broker that is merely down is not an error:
changes wait for it (see broker_notifier).

Shutdown order: the gRPC server stops first (no new changes), then the
notifier gets ``broker_flush_secs`` to deliver what is still queued.
"""

from __future__ import annotations

import sys

import zmq
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from chorus.common import readiness
from chorus.common.config import join_host_port, parse_host_port
from chorus.common.curve import ClientCurve
from chorus.common.db import create_db_engine
from chorus.common.grpcserver import serve_until_signalled
from chorus.common.grpctls import ClientTls, ServerTls, channel
from chorus.common.keysdir import KeysError, service_folder
from chorus.membership.accounts import AuthAccounts
from chorus.membership.broker_notifier import BrokerNotifier, Notifier, NullNotifier
from chorus.membership.cluster_notifier import ClusterNotifier
from chorus.membership.config import Settings
from chorus.membership.server import create_server
from chorus.membership.storage import MembershipStore, migrate

__all__ = ["run"]


def run(settings: Settings) -> int:
    try:
        keys = service_folder(settings.keys_dir, settings.insecure_plaintext)
        server_tls, client_tls = (ServerTls.load(keys), ClientTls.load(keys)) if keys else (None, None)
        curve = (ClientCurve.load(keys) if keys and (settings.broker_router is not None or settings.broker_seeds)
                 else None)
    except KeysError as exc:
        return _fail(str(exc), code=2)
    try:
        engine = create_db_engine(settings.database_url)
    except ValueError as exc:
        return _fail(str(exc), code=2)
    notifier: Notifier = NullNotifier()
    auth_channel = channel(settings.auth_address, client_tls)
    try:
        migrate(engine)
        store = MembershipStore(
            engine,
            max_members_per_group=settings.max_members_per_group,
            max_groups_per_account=settings.max_groups_per_account,
        )
        if settings.broker_router is not None or settings.broker_seeds:
            def make_notifier(router: str) -> BrokerNotifier:
                return BrokerNotifier(router, max_queued_changes=settings.broker_max_queued_changes,
                                      snapshot_source=store.last_changes_page, curve=curve)
            if settings.broker_seeds:  # a cluster: every live broker, learnt from the seeds
                broker_notifier = ClusterNotifier(list(settings.broker_seeds), make_notifier, curve=curve)
            else:
                broker_notifier = make_notifier(settings.broker_router)
            try:
                broker_notifier.start()
            except zmq.ZMQError as exc:
                return _fail(f"--broker-router {settings.broker_router}: {exc}", code=2)
            notifier = broker_notifier
        try:
            server, port = create_server(settings.listen, store, settings, notifier=notifier, tls=server_tls,
                                         accounts=AuthAccounts(auth_channel,
                                                               timeout_secs=settings.auth_timeout_secs))
        except OSError as exc:
            return _fail(str(exc), code=2)
        address = join_host_port(parse_host_port(settings.listen)[0], port)
        # The socket is bound and listening from here on; connections queue until start.
        serve_until_signalled(server, grace_secs=settings.grace_secs, announce=lambda: _announce(settings, address))
        return 0
    except OperationalError as exc:
        return _fail(f"cannot open database {_safe(settings.database_url)}: {exc.orig or exc}", code=1)
    finally:
        notifier.close(settings.broker_flush_secs)
        auth_channel.close()
        engine.dispose()


def _fail(message: str, *, code: int) -> int:
    print(f"membership: {message}", file=sys.stderr, flush=True)
    return code


def _announce(settings: Settings, address: str) -> None:
    print(f"membership listening on {address}", file=sys.stderr, flush=True)
    readiness.announce("membership", settings.ready_file, grpc=address)


def _safe(url: str) -> str:
    """``url`` with any password masked, for messages."""
    return make_url(url).render_as_string(hide_password=True)
