"""gRPC server setup shared by auth, membership and the broker's Messages service.

With TLS (``tls``, the default outside tests) the server takes only callers with a
client certificate from the deployment's CA, and each call only if the caller's
role may make it (chorus.common.grpctls).

Every server gets the stock health service (each service name reported SERVING)
and server reflection, open to every caller past the handshake, so other
backends can call us with generic tooling (grpcurl, reflection clients) and no
copy of our stubs.

A request whose bytes do not decode as the method's message is the caller's
fault: it is answered INVALID_ARGUMENT (grpcio's own answer would be INTERNAL
with a traceback in our log), by an interceptor on every unary method.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .grpctls import AuthorizeCalls, ServerTls

__all__ = ["create_grpc_server", "serve_until_signalled"]


def create_grpc_server(
    address: str,
    *,
    add_servicers: Callable[[grpc.Server], None],
    service_names: Sequence[str],
    max_workers: int,
    tls: ServerTls | None = None,
) -> tuple[grpc.Server, int]:
    """A started-but-not-running server bound to ``address``; returns it and the bound port.

    ``address`` may use port 0 (tests): the returned port is the real one. ``tls``: the
    server's certificate and CA (None: plaintext, for --insecure-plaintext).
    Raises ``OSError`` when the address cannot be bound.
    """
    # Authorisation first: a caller that may not call a method learns nothing about it,
    # not even whether its request decodes.
    interceptors = [AuthorizeCalls()] if tls is not None else []
    # No SO_REUSEPORT: a second server on a taken port must fail, not silently share it.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers),
                         interceptors=[*interceptors, _UndecodableIsInvalidArgument()],
                         options=[("grpc.so_reuseport", 0)])
    add_servicers(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *service_names):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    try:
        port = (server.add_insecure_port(address) if tls is None
                else server.add_secure_port(address, tls.credentials()))
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from None
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return server, port


_UNDECODABLE = object()
UNDECODABLE_DETAILS = "the request is not a valid protobuf message for this method"


class _UndecodableIsInvalidArgument(grpc.ServerInterceptor):
    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        decode, behaviour = handler.request_deserializer, handler.unary_unary

        def lenient(raw: bytes):
            try:
                return decode(raw)
            except Exception:  # DecodeError and whatever else a malformed message raises
                return _UNDECODABLE

        def guarded(request, context):
            if request is _UNDECODABLE:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, UNDECODABLE_DETAILS)
            return behaviour(request, context)

        return grpc.unary_unary_rpc_method_handler(guarded, request_deserializer=lenient,
                                                   response_serializer=handler.response_serializer)


def serve_until_signalled(server: grpc.Server, *, grace_secs: float, announce=lambda: None) -> None:
    """Start ``server``, call ``announce()`` (print "listening"), block until SIGINT/SIGTERM,
    then stop gracefully. Handlers go in first: whoever reads the announcement may signal
    us at once, and an early SIGTERM must still mean a clean stop."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    announce()
    # Wake up regularly: a signal delivered to one of gRPC's threads only runs our
    # handler when the main thread next executes Python code.
    while not stop.wait(0.5):
        pass
    server.stop(grace_secs).wait()
