"""gRPC wiring for the membership service: servicer, health and reflection on one server."""

from __future__ import annotations

import grpc

from chorus.common.grpcserver import create_grpc_server
from chorus.common.grpctls import ServerTls
from chorus.membership.accounts import Accounts
from chorus.membership.broker_notifier import Notifier, NullNotifier
from chorus.membership.config import Settings
from chorus.membership.servicer import MembershipServicer
from chorus.membership.storage import MembershipStore
from chorus.wire.pb import membership_pb2, membership_pb2_grpc

__all__ = ["SERVICE_NAME", "create_server"]

# "chorus.membership.v1.Membership", read from the generated descriptor so it cannot drift.
SERVICE_NAME = membership_pb2.DESCRIPTOR.services_by_name["Membership"].full_name


def create_server(
    address: str, store: MembershipStore, settings: Settings, *, accounts: Accounts,
    notifier: Notifier | None = None, tls: ServerTls | None = None
) -> tuple[grpc.Server, int]:
    """A bound, not yet started server and its port (``address`` may use port 0).

    ``accounts`` says which account ids exist (accounts.AuthAccounts asks auth). ``notifier``
    hears every committed join and leave (default: nobody). The caller owns both and closes
    them after the server has stopped. ``tls``: mutual TLS and per-role authorisation (None:
    plaintext). Raises OSError when ``address`` cannot be bound.
    """
    servicer = MembershipServicer(store, accounts, notifier or NullNotifier())
    return create_grpc_server(
        address,
        add_servicers=lambda server: membership_pb2_grpc.add_MembershipServicer_to_server(servicer, server),
        service_names=[SERVICE_NAME],
        max_workers=settings.max_workers,
        tls=tls,
    )
