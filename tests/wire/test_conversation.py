"""The broker conversation without sockets: what it sends, and what each reply means."""

from __future__ import annotations

import pytest

from chorus.wire.conversation import (BrokerRefused, Conversation, Malformed, NotMember, StoreUnavailable,
                                      UnknownGateway, UnknownSession)
from chorus.wire.pb import broker_pb2

Code = broker_pb2.Failure.Code


def reply(request_id: int, **kind) -> bytes:
    return broker_pb2.BrokerReply(request_id=request_id, **kind).SerializeToString()


def welcome(request_id: int, fresh: bool, broker_id: str = "b1") -> bytes:
    return reply(request_id, welcome=broker_pb2.Welcome(broker_id=broker_id, fresh=fresh))


@pytest.fixture
def conversation():
    return Conversation("gw-1", timeout_secs=5)


def test_requests_get_distinct_ids_and_say_what_was_asked(conversation):
    first = conversation.request(0.0, close_session=broker_pb2.CloseSession(session_id="s1"))
    second = conversation.hello(0.0)
    assert first.request_id != second.request_id
    sent = broker_pb2.GatewayRequest.FromString(second.payload)
    assert (sent.request_id, sent.WhichOneof("kind"), sent.hello.gateway_id) == (second.request_id, "hello", "gw-1")


def test_a_reply_answers_its_request_once_and_anything_else_is_late(conversation):
    out = conversation.request(0.0, sync=broker_pb2.Sync(nonce=b"n"))
    answer = conversation.receive(reply(out.request_id, done=broker_pb2.Done()))
    assert (answer.request_id, answer.kind, answer.error) == (out.request_id, "done", None)
    assert conversation.receive(reply(out.request_id, done=broker_pb2.Done())) is None, "answered already"
    assert conversation.receive(reply(999, done=broker_pb2.Done())) is None, "never asked"
    assert conversation.receive(b"\xff\xff not a reply") is None
    assert conversation.late_replies == 3


@pytest.mark.parametrize(("code", "error"), [
    (Code.BAD_REQUEST, Malformed), (Code.NOT_MEMBER, NotMember), (Code.UNKNOWN_SESSION, UnknownSession),
    (Code.UNKNOWN_GATEWAY, UnknownGateway), (Code.UNAVAILABLE, StoreUnavailable),
    (Code.CODE_UNSPECIFIED, BrokerRefused),
])
def test_each_failure_code_is_one_typed_error(conversation, code, error):
    out = conversation.request(0.0, post=broker_pb2.Post(session_id="s", group_id="g", text="t"))
    answer = conversation.receive(reply(out.request_id, failure=broker_pb2.Failure(code=code, message="why")))
    assert type(answer.error) is error and str(answer.error) == "why"
    with pytest.raises(error):
        answer.result("posted")


def test_hello_is_needed_until_welcomed_and_again_after_the_broker_forgot_us(conversation):
    assert conversation.needs_hello
    hello = conversation.hello(0.0)
    answer = conversation.receive(welcome(hello.request_id, fresh=True))
    assert answer.fresh and not conversation.needs_hello and conversation.broker_id == "b1"
    out = conversation.request(0.0, close_session=broker_pb2.CloseSession(session_id="s"))
    conversation.receive(reply(out.request_id, failure=broker_pb2.Failure(code=Code.UNKNOWN_GATEWAY)))
    assert conversation.needs_hello, "the broker forgot us: nothing was done; Hello first"


def test_a_fresh_welcome_keeps_reregistration_due_until_the_owner_has_done_it(conversation):
    conversation.receive(welcome(conversation.hello(0.0).request_id, fresh=True))
    conversation.receive(welcome(conversation.hello(1.0).request_id, fresh=False, broker_id="b1"))
    assert conversation.reregistration_due, "a later Welcome does not undo what the broker forgot"
    conversation.reregistered()
    assert not conversation.reregistration_due


def test_deadlines_are_data_and_an_expiry_means_hello_again(conversation):
    conversation.receive(welcome(conversation.hello(0.0).request_id, fresh=False))
    early = conversation.request(10.0, deadline=12.0, close_session=broker_pb2.CloseSession(session_id="a"))
    late = conversation.request(10.0, close_session=broker_pb2.CloseSession(session_id="b"))
    assert conversation.next_deadline() == 12.0
    assert conversation.expire(11.0) == [] and not conversation.needs_hello
    assert conversation.expire(12.0) == [early.request_id]
    assert conversation.needs_hello and conversation.next_deadline() == 15.0
    assert conversation.receive(reply(early.request_id, done=broker_pb2.Done())) is None, "given up on"
    assert conversation.receive(reply(late.request_id, done=broker_pb2.Done())).kind == "done"


def test_a_resend_keeps_its_id_so_an_answer_to_any_attempt_counts(conversation):
    first = conversation.request(0.0, membership_change=broker_pb2.MembershipChange(account_id="u"))
    again = conversation.resend(first.request_id, 5.0)
    assert (again.request_id, again.payload) == (first.request_id, first.payload)
    assert conversation.next_deadline() == 10.0
    assert conversation.receive(reply(first.request_id, done=broker_pb2.Done())).kind == "done"


def test_an_answer_of_the_wrong_kind_is_malformed(conversation):
    out = conversation.request(0.0, history=broker_pb2.History(group_id="g"))
    answer = conversation.receive(reply(out.request_id, done=broker_pb2.Done()))
    with pytest.raises(Malformed, match="answered done to a request expecting messages"):
        answer.result("messages")


def test_a_fresh_welcome_that_comes_late_still_counts(conversation):
    """The Hello was given up on (a timeout, a dropped connection) but the new broker answered
    it: without this the gateway would never learn that its sessions were forgotten."""
    hello = conversation.hello(0.0)
    conversation.forget(hello.request_id)
    assert conversation.receive(welcome(hello.request_id, fresh=True, broker_id="b2")) is None
    assert conversation.reregistration_due and conversation.broker_id == "b2"
