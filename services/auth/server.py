"""gRPC wiring for the auth service: servicer, health and reflection on one server."""

from __future__ import annotations

import grpc

from chorus.auth.servicer import AuthServicer
from chorus.common.grpcserver import create_grpc_server
from chorus.common.grpctls import ServerTls
from chorus.wire.pb import auth_pb2, auth_pb2_grpc

__all__ = ["SERVICE_NAME", "create_server"]

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["Auth"].full_name


def create_server(address: str, servicer: AuthServicer, *, max_workers: int,
                  tls: ServerTls | None = None) -> tuple[grpc.Server, int]:
    """A bound, not yet started server and its port; OSError when ``address`` cannot be bound.
    ``tls``: mutual TLS and per-role authorisation (None: plaintext)."""
    return create_grpc_server(
        address,
        add_servicers=lambda server: auth_pb2_grpc.add_AuthServicer_to_server(servicer, server),
        service_names=[SERVICE_NAME],
        max_workers=max_workers,
        tls=tls,
    )
