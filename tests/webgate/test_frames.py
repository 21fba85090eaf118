"""Client frame validation and server frame encoding, without sockets."""

import orjson
import pytest

from chorus.wire.pb import broker_pb2
from chorus.wire.senders import SYSTEM_SENDER_ID
from chorus.webgate.errors import BadJson, InvalidArgument, TooLarge, UnknownOp
from chorus.webgate.frames import (AuthFrame, PingFrame, ReadFrame, ResumeFrame, SendFrame, group_states,
                                   message_json, message_payload, parse_client_frame, text_frame)
from wsframes import read_frame

LIMIT = 10


def parse(obj_or_text):
    data = obj_or_text if isinstance(obj_or_text, str) else orjson.dumps(obj_or_text)
    return parse_client_frame(data, max_text_chars=LIMIT)


def test_valid_frames_parse_into_types():
    assert parse({"op": "auth", "token": "t"}) == AuthFrame("t")
    assert parse({"op": "send", "group": "g1", "text": "hi", "ref": "r1"}) == SendFrame("g1", "hi", "r1")
    assert parse({"op": "send", "group": "g1", "text": "hi"}) == SendFrame("g1", "hi", None)
    assert parse({"op": "ping"}) == PingFrame()
    assert parse({"op": "resume", "since": {"g1": 4, "g2": 0}}) == ResumeFrame({"g1": 4, "g2": 0})
    assert parse({"op": "read", "group": "g1", "seq": 9}) == ReadFrame("g1", 9)
    assert parse({"op": "read", "group": "g1", "seq": 9, "ref": 4}) == ReadFrame("g1", 9, 4)


@pytest.mark.parametrize("data, error, words", [
    ("{nope", BadJson, "not valid JSON"),
    ("[1, 2]", BadJson, "JSON object"),
    ({"op": "dance"}, UnknownOp, "unknown op 'dance'"),
    ({"no": "op"}, UnknownOp, "unknown op None"),
    ({"op": "send", "text": "hi"}, InvalidArgument, "'group'"),
    ({"op": "send", "group": 5, "text": "hi"}, InvalidArgument, "'group'"),
    ({"op": "send", "group": "g", "text": None}, InvalidArgument, "'text'"),
    ({"op": "send", "group": "g", "text": "  \n"}, InvalidArgument, "blank"),
    ({"op": "send", "group": "g", "text": "\u200b\u200d\u3164"}, InvalidArgument, "blank"),  # only invisible
    ({"op": "send", "group": "g", "text": "x" * (LIMIT + 1)}, TooLarge, "limit is 10"),
    ({"op": "send", "group": "g" * 65, "text": "x"}, InvalidArgument, "longer than 64"),
    ({"op": "auth"}, InvalidArgument, "'token'"),
    ({"op": "send", "group": "g", "text": "x", "ref": {"a": 1}}, InvalidArgument, "ref"),
    ({"op": "resume"}, InvalidArgument, "'since' must be an object"),
    ({"op": "resume", "since": [1]}, InvalidArgument, "'since' must be an object"),
    ({"op": "resume", "since": {"g": -1}}, InvalidArgument, "since['g'] must be a whole number"),
    ({"op": "resume", "since": {"g": "5"}}, InvalidArgument, "whole number"),
    ({"op": "resume", "since": {"g": True}}, InvalidArgument, "whole number"),
    ({"op": "resume", "since": {"": 1}}, InvalidArgument, "bad group id"),
    ({"op": "resume", "since": {f"g{i}": 0 for i in range(1001)}}, InvalidArgument, "more than 1000"),
    ({"op": "read", "group": "g"}, InvalidArgument, "'seq' must be a whole number"),
    ({"op": "read", "group": "g", "seq": 2**63}, InvalidArgument, "'seq' must be a whole number"),
    ({"op": "read", "seq": 1}, InvalidArgument, "'group'"),
])
def test_bad_frames_name_the_problem(data, error, words):
    with pytest.raises(error) as info:
        parse(data)
    assert words in info.value.message


def test_errors_carry_the_frames_ref():
    with pytest.raises(TooLarge) as info:
        parse({"op": "send", "group": "g", "text": "x" * 11, "ref": "r9"})
    assert info.value.ref == "r9"


def test_text_at_the_limit_is_accepted():
    assert parse({"op": "send", "group": "g", "text": "é" * LIMIT}).text == "é" * LIMIT


def test_message_frame_is_a_valid_unmasked_websocket_text_frame():
    delivery = broker_pb2.Delivery(group_id="g1", seq=3, ts_ms=123, text="héllo",
                                   sender=broker_pb2.Person(id="u1", username="al", display_name="Al"))
    frame_bytes = text_frame(message_payload(delivery))
    reader = read_frame(frame_bytes)
    assert orjson.loads(reader.data) == {
        "op": "message", "group": "g1", "seq": 3, "ts": 123,
        "from": {"id": "u1", "username": "al", "display_name": "Al"}, "text": "héllo",
    }
    big = text_frame(b'"' + b"x" * 70000 + b'"')  # 64-bit length form
    assert len(read_frame(big).data) == 70002




def test_group_states_give_last_seq_and_unread_never_below_zero():
    groups = {"g1": "One", "g2": "Two", "g3": "Three"}
    states = {"g1": (10, 4), "g2": (3, 5)}
    assert group_states(groups, states) == [
        {"id": "g1", "name": "One", "last_seq": 10, "unread": 6},
        {"id": "g2", "name": "Two", "last_seq": 3, "unread": 0},
        {"id": "g3", "name": "Three", "last_seq": 0, "unread": 0},
    ]


def test_a_backends_post_is_marked_system_and_a_persons_is_not():
    def delivery(sender_id: str, name: str) -> broker_pb2.Delivery:
        return broker_pb2.Delivery(group_id="g1", seq=1, ts_ms=1, text="hi",
                                   sender=broker_pb2.Person(id=sender_id, username=name, display_name=name))
    assert message_json(delivery(SYSTEM_SENDER_ID, "Billing"))["system"] is True
    assert "system" not in message_json(delivery("u_1", "billing"))
    assert orjson.loads(message_payload(delivery(SYSTEM_SENDER_ID, "Alice")))["system"] is True
