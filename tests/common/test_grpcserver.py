"""The shared gRPC server answers bytes that are no request with INVALID_ARGUMENT, not INTERNAL."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2

from chorus.common.grpcserver import UNDECODABLE_DETAILS, create_grpc_server

CHECK = "/grpc.health.v1.Health/Check"


@pytest.fixture
def channel():
    server, port = create_grpc_server("127.0.0.1:0", add_servicers=lambda _: None, service_names=[],
                                      max_workers=2)
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    server.stop(None)


def raw_call(channel):
    return channel.unary_unary(CHECK, request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)


def test_undecodable_bytes_are_the_callers_fault(channel):
    with pytest.raises(grpc.RpcError) as error:
        raw_call(channel)(b"\x00", timeout=5)
    assert (error.value.code(), error.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, UNDECODABLE_DETAILS)


def test_a_valid_request_still_gets_its_answer(channel):
    reply = raw_call(channel)(health_pb2.HealthCheckRequest(service="").SerializeToString(), timeout=5)
    assert health_pb2.HealthCheckResponse.FromString(reply).status == health_pb2.HealthCheckResponse.SERVING
