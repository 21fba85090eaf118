"""Hypothesis against every gRPC method of auth, membership and Messages, called through
reflection as any other backend would (no copy of our stubs).

Requests are built from the method's input descriptor: every field with
values of its type from the whole range (huge and negative ints, unicode,
long strings, repeated fields), the real account, group and token mixed in so
deeper paths are reached; plus bytes that are not a valid request at all.
Every answer must be OK or a status that blames the caller: never INTERNAL,
UNKNOWN, UNAVAILABLE or a deadline. Afterwards every service is still up with
no traceback in its log.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import EXAMPLES, FULL_RUN, GRPC_SERVICES, Figures, Fuzzer, assert_stack_alive, fuzz_settings, tracebacks
from chorus.common.grpctls import channel as tls_channel
from chorus.wire.pb import auth_pb2, membership_pb2, messages_pb2
from generic_grpc import backend_tls

TIMEOUT_SECS = 10
CALLERS_FAULT = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS,
                 grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
                 grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED,
                 grpc.StatusCode.OUT_OF_RANGE}
# The method names come from our own descriptors (collection needs no server); requests,
# calls and answers use reflection only.
METHODS = [(port, service, method.name)
           for port, module in (("auth", auth_pb2), ("membership", membership_pb2), ("broker-grpc", messages_pb2))
           for service in GRPC_SERVICES[port]
           for method in module.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[1]].methods]
PASSWORD_METHODS = {"Register", "Login"}  # argon2, ~0.3 s a case: few in the short CI run
CASES_PER_METHOD = EXAMPLES // (len(METHODS) + 1) + 1  # + 1: the undecodable requests


@pytest.fixture(scope="module")
def target(fuzz_stack):
    before = tracebacks(fuzz_stack)
    fuzzer = Fuzzer(fuzz_stack, "grpcfuzz")
    tls = backend_tls(fuzz_stack.keys)  # a backend allowed every method: the fuzzer tests what is past the gate
    channels = {port: tls_channel(f"127.0.0.1:{fuzz_stack.ports[port]}", tls) for port in GRPC_SERVICES}
    figures = Figures("gRPC (hypothesis, via reflection)")
    yield {"channels": channels, "figures": figures,
           "known": [fuzzer.user["id"], fuzzer.group_id, fuzzer.token, fuzzer.username]}
    for channel in channels.values():
        channel.close()
    assert_stack_alive(fuzz_stack, figures, before)
    figures.record()


def reflected_method(channel, service: str, method: str):
    """(request class, input descriptor, full method path) from the server's reflection."""
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    descriptor = pool.FindServiceByName(service).FindMethodByName(method)
    return message_factory.GetMessageClass(descriptor.input_type), descriptor.input_type, f"/{service}/{method}"


_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1), FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1), FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1), FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1), FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def value_of(field, known: list[str], depth: int):
    if field.type == FieldDescriptor.TYPE_STRING:
        return st.sampled_from(known) | st.text(max_size=100) | st.text(max_size=5000)
    if field.type in _INT_RANGES:
        low, high = _INT_RANGES[field.type]
        return st.integers(low, high) | st.sampled_from([low, high, 0, -1 if low else 1])
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=2000)
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=32 if field.type == FieldDescriptor.TYPE_FLOAT else 64)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values]) | st.integers(-5, 1000)
    if field.type == FieldDescriptor.TYPE_MESSAGE and depth < 3:
        return request_of(field.message_type, known, depth + 1)
    return st.nothing()


def request_of(descriptor, known: list[str], depth: int = 0):
    """Messages of ``descriptor``'s type: any subset of its fields set, each to any value of its type."""
    message_class = message_factory.GetMessageClass(descriptor)
    fields = {}
    for field in descriptor.fields:
        value = value_of(field, known, depth)
        fields[field.name] = st.lists(value, max_size=20) if field.is_repeated else value
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: message_class(**values))


def check(call, request, figures: Figures) -> None:
    figures.cases += 1
    try:
        call(request, timeout=TIMEOUT_SECS)
    except grpc.RpcError as error:
        if error.code() not in CALLERS_FAULT:
            figures.server_errors += 1
            raise AssertionError(f"{error.code()} {error.details()!r} for {request!r}") from None


@pytest.mark.parametrize("port, service, method", METHODS, ids=[f"{s.rsplit('.', 1)[1]}.{m}" for _, s, m in METHODS])
def test_every_method_answers_bad_requests_as_the_callers_fault(target, port, service, method):
    channel = target["channels"][port]
    request_class, descriptor, path = reflected_method(channel, service, method)
    call = channel.unary_unary(path, request_serializer=request_class.SerializeToString,
                               response_deserializer=lambda raw: raw)
    cases = CASES_PER_METHOD if FULL_RUN or method not in PASSWORD_METHODS else 5

    @fuzz_settings(cases)
    @given(request_of(descriptor, target["known"]))
    def case(request):
        check(call, request, target["figures"])

    case()


def test_bytes_that_are_no_request_at_all(target):
    """Random bytes as the request of every method: mostly undecodable, sometimes a valid message."""
    calls = [target["channels"][port].unary_unary(f"/{service}/{method}", request_serializer=lambda raw: raw,
                                                  response_deserializer=lambda raw: raw)
             for port, service, method in METHODS if method not in PASSWORD_METHODS]

    @fuzz_settings(CASES_PER_METHOD)
    @given(st.sampled_from(calls), st.binary(max_size=3000))
    def case(call, raw):
        check(call, raw, target["figures"])

    case()
