"""gRPC between services is mutual TLS: without a certificate from the deployment's CA nothing
can be called, and each certificate may call only what its role may.

Against the running stack (`chorus up`, TLS on as by default), for every method of
auth, membership and Messages (read from our contracts, so a new method is covered
the day it is added):

- no client certificate, a certificate from another CA (even one that says
  "gateway"), or plaintext: the handshake fails, UNAVAILABLE;
- a certificate from our CA whose role may not call the method: PERMISSION_DENIED,
  naming the role and the method, and logged by the service;
- a certificate whose role may call it: the call reaches the method (an empty
  request then gets the method's own answer, never PERMISSION_DENIED).

The normal traffic (the page's every request, membership asking auth, Messages asking
membership) is the rest of the suite, all of it over TLS.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chorus.common.grpctls import ClientTls, channel
from chorus.common.keys import ensure_keys
from chorus.wire.pb import auth_pb2, membership_pb2, messages_pb2
from generic_grpc import backend_tls, call_without_stubs, method_without_stubs

# server (Stack.ports name) -> its service, from our own descriptors
SERVERS = {"auth": auth_pb2.DESCRIPTOR.services_by_name["Auth"],
           "membership": membership_pb2.DESCRIPTOR.services_by_name["Membership"],
           "broker-grpc": messages_pb2.DESCRIPTOR.services_by_name["Messages"]}
METHODS = [(port, f"{service.full_name}/{method.name}") for port, service in SERVERS.items()
           for method in service.methods]
EVERY_AUTH = {path for port, path in METHODS if port == "auth"}
EVERY_MEMBERSHIP = {path for port, path in METHODS if port == "membership"}

# The promise, written out: caller -> the methods it may call (everything else is refused).
MAY_CALL = {
    "gateway": EVERY_AUTH | EVERY_MEMBERSHIP,
    "membership": {"chorus.auth.v1.Auth/GetAccounts"},
    "broker": {"chorus.membership.v1.Membership/ListGroupMembers"},
    "auth": set(),
    "backend billing": {"chorus.messages.v1.Messages/PostMessage"},
}
CALL_TIMEOUT_SECS = 5


@pytest.fixture(scope="module")
def callers(stack) -> dict[str, ClientTls]:
    own = {role: ClientTls.load(stack.keys / role) for role in ("gateway", "membership", "broker", "auth")}
    return {**own, "backend billing": backend_tls(stack.keys, "billing", "messages.PostMessage")}


@pytest.fixture(scope="module")
def strangers(stack, tmp_path_factory):
    """address -> a channel per kind of caller that cannot prove who it is (all trust our CA,
    so that what is refused is the caller, not the server)."""
    ca = (stack.keys / "gateway" / "ca.crt").read_bytes()
    foreign = ClientTls.load(ensure_keys(tmp_path_factory.mktemp("elsewhere")) / "gateway")  # another deployment
    return {
        "plaintext": grpc.insecure_channel,
        "no certificate": lambda address: grpc.secure_channel(address, grpc.ssl_channel_credentials(ca)),
        "another CA's gateway": lambda address: channel(address, ClientTls(ca, foreign.certificate, foreign.key)),
    }


def status_of(open_channel: grpc.Channel, path: str) -> tuple[grpc.StatusCode, str]:
    """What calling ``path`` with an empty request answers (OK when the method answered)."""
    call = open_channel.unary_unary(f"/{path}", request_serializer=lambda _: b"", response_deserializer=bytes)
    try:
        call(None, timeout=CALL_TIMEOUT_SECS)
    except grpc.RpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def test_every_method_refuses_a_caller_without_a_certificate_from_our_ca(stack, strangers):
    wrong = []
    for who, make_channel in strangers.items():
        for port, path in METHODS:
            with make_channel(f"127.0.0.1:{stack.ports[port]}") as open_channel:  # a fresh handshake each
                code, details = status_of(open_channel, path)
            if code != grpc.StatusCode.UNAVAILABLE:
                wrong.append(f"{who} -> {path}: {code} {details}")
    assert not wrong, "\n".join(wrong)


def test_each_certificate_calls_exactly_what_its_role_may(stack, callers):
    wrong = []
    for who, tls in callers.items():
        for port, path in METHODS:
            with channel(f"127.0.0.1:{stack.ports[port]}", tls) as open_channel:
                code, details = status_of(open_channel, path)
            if path in MAY_CALL[who]:
                if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE):
                    wrong.append(f"{who} may call {path} but got {code} {details!r}")
            elif code != grpc.StatusCode.PERMISSION_DENIED or path not in details:
                wrong.append(f"{who} may not call {path} but got {code} {details!r}")
    assert not wrong, "\n".join(wrong)


def test_a_refusal_names_the_role_and_the_method_and_is_logged(stack, callers):
    with channel(f"127.0.0.1:{stack.ports['broker-grpc']}", callers["gateway"]) as open_channel:
        code, details = status_of(open_channel, "chorus.messages.v1.Messages/PostMessage")
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == ("role 'gateway' may not call chorus.messages.v1.Messages/PostMessage "
                       "(it may call: auth.*, membership.*)")
    with channel(f"127.0.0.1:{stack.ports['membership']}", callers["backend billing"]) as open_channel:
        code, details = status_of(open_channel, "chorus.membership.v1.Membership/JoinGroup")
    assert details == ("backend 'billing' may not call chorus.membership.v1.Membership/JoinGroup "
                       "(it may call: messages.PostMessage)")
    log = stack.log()
    assert ("refused a gRPC call from ipv4:127.0.0.1:" in log
            and "backend 'billing' may not call chorus.membership.v1.Membership/JoinGroup" in log), log[-3000:]


def test_health_and_reflection_answer_any_certificate_from_our_ca(stack, callers):
    for port, service in SERVERS.items():
        with channel(f"127.0.0.1:{stack.ports[port]}", callers["auth"]) as open_channel:  # may call nothing else
            reply = health_pb2_grpc.HealthStub(open_channel).Check(
                health_pb2.HealthCheckRequest(service=service.full_name), timeout=CALL_TIMEOUT_SECS)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            method_without_stubs(open_channel, service.full_name, service.methods[0].name)  # reflection


async def test_a_backend_given_a_certificate_by_chorus_keys_posts_and_nothing_more(stack, people):
    made = subprocess.run([sys.executable, "-m", "chorus", "keys", str(stack.keys), "--backend", "announcer",
                           "--allow", "messages.PostMessage"], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    folder = stack.keys / "backends" / "announcer"
    assert str(folder) in made.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["ca.crt", "grpc-client.crt", "grpc-client.key"]
    tls = ClientTls.load(folder)
    (alice,) = await people("alice")
    group = await alice.create_group()
    page = await alice.open_page()

    def post(text: str):
        return call_without_stubs(f"127.0.0.1:{stack.ports['broker-grpc']}", "chorus.messages.v1.Messages",
                                  "PostMessage", tls=tls, group_id=group["id"], sender_name="News", text=text)

    reply = await asyncio.to_thread(post, "the announcer speaks")
    frame = await page.expect("message", text="the announcer speaks")
    assert frame["seq"] == reply.seq and frame.get("system") is True
    with pytest.raises(grpc.RpcError) as refused:
        await asyncio.to_thread(call_without_stubs, f"127.0.0.1:{stack.ports['broker-grpc']}",
                                "chorus.messages.v1.Messages", "ListMessages", tls=tls, group_id=group["id"])
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
