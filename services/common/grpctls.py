"""gRPC over mutual TLS between our services: credentials from a keys folder, channels, and the
interceptor that checks what each caller may call.

Every gRPC server (auth, membership, the broker's Messages) asks each caller for a
client certificate issued by the deployment's CA (``require_client_auth``): a caller
without one, or with one from another CA, fails the handshake and never reaches a
method (gRPC logs the failed handshake; the caller sees UNAVAILABLE). Past the
handshake, ``AuthorizeCalls`` reads the certificate's role from the call's auth
context and lets through only what that role may call (chorus.common.grpcauth);
anything else is PERMISSION_DENIED with a message naming the role and the method,
and logged. Clients check the server's certificate against the same CA and the
name they dialled.

A service's keys folder (``--keys-dir``, laid out by ``chorus keys``, chorus.common.keys):

    ca.crt                        the CA certificate: whom to trust, both ways
    grpc-server.crt, .key         a gRPC server's own certificate (auth, membership, broker)
    grpc-client.crt, .key         the certificate it calls other services with (its role)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

import grpc

from .grpcauth import holder_from_names, may_call, refusal
from .keysdir import KeysError, service_folder

__all__ = ["ServerTls", "ClientTls", "AuthorizeCalls", "channel", "aio_channel",
           "CA_CERT", "SERVER_CERT", "SERVER_KEY", "CLIENT_CERT", "CLIENT_KEY"]

log = logging.getLogger(__name__)

CA_CERT = "ca.crt"
SERVER_CERT, SERVER_KEY = "grpc-server.crt", "grpc-server.key"
CLIENT_CERT, CLIENT_KEY = "grpc-client.crt", "grpc-client.key"


def _read(folder: Path, name: str) -> bytes:
    path = folder / name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeysError(f"{path}: cannot read it ({exc.strerror}); `chorus keys` makes it") from None
    if b"-----BEGIN " not in data:
        raise KeysError(f"{path}: not a PEM file")
    return data


@dataclass(frozen=True)
class _Tls:
    """A certificate, its key and the CA the other side's certificate must come from."""

    ca: bytes
    certificate: bytes
    key: bytes = field(repr=False)
    _files: ClassVar[tuple[str, str]]  # (certificate, key) in a keys folder

    @classmethod
    def for_service(cls, keys_dir: Path | None, insecure_plaintext: bool) -> Self | None:
        folder = service_folder(keys_dir, insecure_plaintext)
        return None if folder is None else cls.load(folder)

    @classmethod
    def load(cls, folder: Path) -> Self:
        certificate, key = cls._files
        return cls(_read(folder, CA_CERT), _read(folder, certificate), _read(folder, key))


class ServerTls(_Tls):
    """A gRPC server's certificate; its callers' certificates must come from the CA."""

    _files = (SERVER_CERT, SERVER_KEY)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.certificate)], root_certificates=self.ca,
                                           require_client_auth=True)


class ClientTls(_Tls):
    """A caller's certificate (its role); its servers' certificates must come from the CA."""

    _files = (CLIENT_CERT, CLIENT_KEY)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.ca, self.key, self.certificate)


def channel(address: str, tls: ClientTls | None) -> grpc.Channel:
    """A blocking channel to ``address``: mutual TLS, or plaintext when ``tls`` is None
    (--insecure-plaintext)."""
    if tls is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, tls.credentials())


def aio_channel(address: str, tls: ClientTls | None) -> grpc.aio.Channel:
    """``channel``, for asyncio."""
    if tls is None:
        return grpc.aio.insecure_channel(address)
    return grpc.aio.secure_channel(address, tls.credentials())


_HANDLER_KINDS: dict[str, Callable[..., grpc.RpcMethodHandler]] = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


class AuthorizeCalls(grpc.ServerInterceptor):
    """Each call runs only if the caller's certificate may call its method (chorus.common.grpcauth).

    The check runs inside the handler, before the method's own code: the auth
    context (the verified peer certificate) exists only there, not in
    ``intercept_service``.
    """

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        for kind, make in _HANDLER_KINDS.items():
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                return make(_checked(behaviour, method), request_deserializer=handler.request_deserializer,
                            response_serializer=handler.response_serializer)
        return handler


def _checked(behaviour, method: str):
    def checked(request_or_iterator, context):
        auth = context.auth_context()
        holder = holder_from_names(
            b"".join(auth.get("x509_common_name", [])).decode(errors="replace"),
            (name.decode(errors="replace") for name in auth.get("x509_subject_alternative_name", [])))
        if not may_call(holder, method):
            reason = refusal(holder, method)
            log.warning("refused a gRPC call from %s: %s", context.peer(), reason)
            context.abort(grpc.StatusCode.PERMISSION_DENIED, reason)
        return behaviour(request_or_iterator, context)
    return checked
