"""Calling our gRPC services the way another backend would: no copy of our stubs.

Everything is learned from the server's reflection service into a fresh
descriptor pool, so a test using these proves generic tooling can call us.
Like any backend, the caller needs a client certificate from the deployment's
CA (``backend_tls``: what `chorus keys DIR --backend NAME --allow ...` issues).
"""

from __future__ import annotations

from pathlib import Path

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from chorus.common.grpcauth import parse_permissions
from chorus.common.grpctls import ClientTls, channel
from chorus.common.keys import issue_backend

TIMEOUT_SECS = 5
EVERY_SERVICE = "auth.*,membership.*,messages.*"


def backend_tls(keys_root: Path, name: str = "tests", allow: str = EVERY_SERVICE) -> ClientTls:
    """An outside backend's certificate from the CA under ``keys_root`` (a stack's DATA_DIR/keys,
    or a `chorus keys` folder), allowed ``allow``."""
    return ClientTls.load(issue_backend(keys_root, name, parse_permissions(allow)))


def method_without_stubs(channel: grpc.Channel, service: str, method: str):
    """``(call, request_class)`` for ``service/method``, built only from reflection."""
    reflection_db = ProtoReflectionDescriptorDatabase(channel)
    assert service in reflection_db.get_services()
    pool = descriptor_pool.DescriptorPool(reflection_db)
    descriptor = pool.FindServiceByName(service).FindMethodByName(method)
    request_class = message_factory.GetMessageClass(descriptor.input_type)
    response_class = message_factory.GetMessageClass(descriptor.output_type)
    call = channel.unary_unary(
        f"/{service}/{method}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    return call, request_class


def assert_serving(channel: grpc.Channel, service: str) -> None:
    """The stock health service says SERVING for ``service`` and for the server as a whole."""
    health = health_pb2_grpc.HealthStub(channel)
    for name in [service, ""]:
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=TIMEOUT_SECS)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name


def call_without_stubs(address: str, service: str, method: str, *, tls: ClientTls | None, **fields):
    """One unary call of ``service/method`` at ``address`` with ``fields``, stubs learned by
    reflection, over mutual TLS with ``tls`` (None: plaintext)."""
    with channel(address, tls) as open_channel:
        rpc, request_class = method_without_stubs(open_channel, service, method)
        return rpc(request_class(**fields), timeout=TIMEOUT_SECS)
