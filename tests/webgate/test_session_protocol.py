"""One WebSocket session's decisions without sockets: messages in, frames and broker work out."""

from __future__ import annotations

import orjson
import pytest
from aiohttp import WSMsgType

from chorus.common.ratelimit import KeyedLimiter, Rate
from chorus.wire.pb import broker_pb2
from chorus.webgate.session_protocol import (CLOSE_TOO_MANY_SESSIONS, CLOSE_UNAUTHENTICATED, Authenticate, Close,
                                             MarkRead, Post, Refresh, Reply, Resume, SessionProtocol, Stop,
                                             too_many_sessions)
from wsframes import read_frames

TEXT = WSMsgType.TEXT


def frame_of(data: bytes) -> dict:
    [frame] = read_frames(data)
    return orjson.loads(frame.data)


def text(obj) -> str:
    return orjson.dumps(obj).decode()


@pytest.fixture
def protocol():
    p = SessionProtocol(max_text_chars=100, rate=Rate(per_sec=1, burst=3), now=0.0)
    p.ready({"id": "u1", "username": "ann", "display_name": "Ann"}, {"g1": "General"}, {"g1": (4, 1)})
    return p


def test_the_first_message_must_be_a_text_auth_frame():
    fresh = SessionProtocol(max_text_chars=100, rate=Rate(per_sec=1, burst=3), now=0.0)
    assert fresh.first_message(TEXT, text({"op": "auth", "token": "t0k"})) == Authenticate("t0k")
    assert fresh.first_message(WSMsgType.BINARY, b"x") == Close(CLOSE_UNAUTHENTICATED, b"first frame must be auth")
    assert fresh.first_message(TEXT, text({"op": "ping"})) == Close(CLOSE_UNAUTHENTICATED, b"first frame must be auth")
    refused = fresh.first_message(TEXT, "{nope")
    assert refused.code == CLOSE_UNAUTHENTICATED and b"not valid JSON" in refused.reason
    assert fresh.first_message(WSMsgType.CLOSE, None) is None


def test_ready_lists_the_groups_with_unread_counts(protocol):
    ready = frame_of(protocol.ready({"id": "u1"}, {"g1": "General"}, {"g1": (4, 1)}))
    assert ready == {"op": "ready", "user": {"id": "u1"},
                     "groups": [{"id": "g1", "name": "General", "last_seq": 4, "unread": 3}]}


def test_frames_become_broker_work_or_answers(protocol):
    assert protocol.receive(TEXT, text({"op": "ping"}), 0.0) == Reply(b'\x81\x0d{"op":"pong"}')
    post = protocol.receive(TEXT, text({"op": "send", "group": "g1", "text": "hi", "ref": 1,
                                        "idempotency_key": "k1"}), 0.0)
    assert isinstance(post, Post) and (post.frame.text, post.frame.idempotency_key) == ("hi", "k1")
    assert isinstance(protocol.receive(TEXT, text({"op": "resume", "since": {"g1": 2}}), 0.0), Resume)
    # a closed socket or one aiohttp failed (e.g. 1009) ends the relay
    assert isinstance(protocol.receive(WSMsgType.CLOSE, None, 0.0), Stop)
    assert isinstance(protocol.receive(WSMsgType.ERROR, None, 0.0), Stop)


def test_frames_for_groups_the_person_is_not_in_are_refused_with_their_ref(protocol):
    refused = protocol.receive(TEXT, text({"op": "send", "group": "g2", "text": "hi", "ref": "r7"}), 0.0)
    assert frame_of(refused.frame) == {"op": "error", "code": "not_member", "ref": "r7",
                                       "message": "you are not a member of group 'g2'"}
    read = protocol.receive(TEXT, text({"op": "read", "group": "g2", "seq": 3, "ref": "r8"}), 0.0)
    assert frame_of(read.frame)["ref"] == "r8", "the read error keeps its ref"
    assert isinstance(protocol.receive(TEXT, text({"op": "read", "group": "g1", "seq": 3}), 0.0), MarkRead)


def test_bad_frames_are_answered_and_the_session_goes_on(protocol):
    for data, code in [(text({"op": "auth", "token": "x"}), "unknown_op"), ("[1]", "bad_json")]:
        assert frame_of(protocol.receive(TEXT, data, 0.0).frame)["code"] == code
    assert frame_of(protocol.receive(WSMsgType.BINARY, b"\x00", 0.0).frame)["code"] == "bad_json"


def test_a_burst_past_the_limit_is_not_done_and_says_when_to_come_back(protocol):
    for _ in range(3):
        assert protocol.receive(TEXT, text({"op": "ping"}), 10.0) == Reply(b'\x81\x0d{"op":"pong"}')
    limited = frame_of(protocol.receive(TEXT, text({"op": "send", "group": "g1", "text": "x", "ref": 5}), 10.0).frame)
    assert (limited["code"], limited["ref"], limited["retry_after_ms"]) == ("rate_limited", 5, 1000)
    assert isinstance(protocol.receive(TEXT, text({"op": "send", "group": "g1", "text": "x"}), 11.0), Post)


def test_an_accounts_sockets_share_one_post_rate_and_other_frames_do_not_spend_it():
    account_posts = KeyedLimiter(Rate(per_sec=2, burst=2))
    user = {"id": "u1", "username": "ann", "display_name": "Ann"}
    sockets = []
    for _ in range(3):  # three sockets of one account, each with plenty of frames of its own
        p = SessionProtocol(max_text_chars=100, rate=Rate(per_sec=100, burst=100), account_posts=account_posts, now=0.0)
        p.ready(user, {"g1": "General"}, {"g1": (0, 0)})
        sockets.append(p)
    other = SessionProtocol(max_text_chars=100, rate=Rate(per_sec=100, burst=100), account_posts=account_posts, now=0.0)
    other.ready({"id": "u2"}, {"g1": "General"}, {"g1": (0, 0)})

    def send(p, ref, now):
        return p.receive(TEXT, text({"op": "send", "group": "g1", "text": "x", "ref": ref}), now)

    assert isinstance(send(sockets[0], 1, 0.0), Post) and isinstance(send(sockets[1], 2, 0.0), Post)
    limited = frame_of(send(sockets[2], 3, 0.0).frame)
    assert (limited["code"], limited["ref"], limited["retry_after_ms"]) == ("rate_limited", 3, 500)
    assert "all its connections together" in limited["message"]
    assert sockets[2].receive(TEXT, text({"op": "ping"}), 0.0) == Reply(b'\x81\x0d{"op":"pong"}'), "pings pass"
    assert isinstance(send(other, 4, 0.0), Post), "another account has its own rate"
    assert isinstance(send(sockets[2], 5, 0.5), Post), "back once the account's bucket refills"


def test_a_session_past_its_accounts_cap_is_closed_with_4008_and_a_reason():
    assert too_many_sessions(20) == Close(CLOSE_TOO_MANY_SESSIONS, b"too many sessions: at most 20 open at once per account")
    assert CLOSE_TOO_MANY_SESSIONS == 4008


def test_acks_echo_the_ref_and_the_idempotency_key(protocol):
    post = protocol.receive(TEXT, text({"op": "send", "group": "g1", "text": "hi", "ref": 1,
                                        "idempotency_key": "k1"}), 0.0)
    ack = frame_of(protocol.acked(post.frame, broker_pb2.Posted(group_id="g1", seq=9, ts_ms=77)))
    assert ack == {"op": "ack", "ref": 1, "group": "g1", "seq": 9, "ts": 77, "idempotency_key": "k1"}


# sessions follow tokens --------------------------------------------------------

def authenticated(expires_at_ms: int = 10_000, token_id: str = "t1") -> SessionProtocol:
    p = SessionProtocol(max_text_chars=100, rate=Rate(per_sec=1, burst=3), now=0.0)
    p.authenticated("u1", expires_at_ms, token_id)
    p.ready({"id": "u1"}, {"g1": "General"}, {})
    return p


def test_ready_says_when_the_token_expires():
    assert frame_of(authenticated(expires_at_ms=123_000).ready({"id": "u1"}, {}, {}))["expires_at"] == 123_000


def test_the_session_ends_when_its_token_expires():
    p = authenticated(expires_at_ms=10_000)
    assert p.expiry(4_000) == 6.0
    assert p.expiry(10_000) == Close(CLOSE_UNAUTHENTICATED, b"token expired")


def test_a_refresh_of_the_same_account_moves_the_expiry_and_the_token():
    p = authenticated(expires_at_ms=10_000, token_id="t1")
    step = p.receive(TEXT, text({"op": "refresh", "token": "new", "ref": "r"}), 0.0)
    assert isinstance(step, Refresh) and step.frame.token == "new"
    reply = p.refreshed("u1", 70_000, "t2", ref="r")
    assert frame_of(reply.frame) == {"op": "refreshed", "expires_at": 70_000, "ref": "r"}
    assert p.token_id == "t2"
    assert p.expiry(10_000) == 60.0  # past the old expiry, still open


def test_a_refresh_with_another_accounts_token_closes_the_session():
    p = authenticated(expires_at_ms=10_000)
    assert p.refreshed("u2", 70_000, "t9") == Close(CLOSE_UNAUTHENTICATED, b"refresh token is for another account")
    assert p.expiry(10_000) == Close(CLOSE_UNAUTHENTICATED, b"token expired")  # nothing moved


def test_a_refresh_frame_needs_a_token():
    p = authenticated()
    error = frame_of(p.receive(TEXT, text({"op": "refresh", "ref": 3}), 0.0).frame)
    assert error["code"] == "invalid_argument" and error["ref"] == 3


def test_a_revoked_token_closes_with_its_reason():
    assert authenticated().revoked() == Close(CLOSE_UNAUTHENTICATED, b"token revoked")
