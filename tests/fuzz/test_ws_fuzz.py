"""Hypothesis against the WebSocket: every frame type with fuzzed fields, and garbage.

Authenticated: one page receives every case (auth/send/ping/resume/read with
wrong types, huge and negative ints, unicode, lone surrogates, extra fields;
JSON that is not an object; text that is not JSON; binary; deep nesting;
integers past 64 bits). After each case a ping must still get its pong on the
same connection, and no error frame may say the fault was ours.

Before auth: each case opens a new connection and sends one such frame
first; the gateway must answer with ready (a real token) or close with 4001,
never with 1011, and never hang.

Afterwards every service is still up with no traceback in its log.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from fuzzing import EXAMPLES, Figures, Fuzzer, assert_stack_alive, fuzz_settings, tracebacks

TIMEOUT_SECS = 10
OUR_FAULT = {"internal", "unavailable"}  # error codes that would mean the gateway failed, not the client
PRE_AUTH_SHARE = 4  # a quarter of the cases go to fresh connections before auth

# -- strategies ---------------------------------------------------------------------------

everything = st.characters(codec=None, exclude_categories=())  # includes lone surrogates
texts = st.text(everything, max_size=300) | st.text(max_size=5000)
big_ints = st.integers() | st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**40])
json_values = st.recursive(
    st.none() | st.booleans() | big_ints | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def frames(group_id: str, token: str):
    groups = st.just(group_id) | texts | json_values
    seqs = big_ints | json_values
    extras = st.dictionaries(texts, json_values, max_size=2)
    ops = {
        "auth": st.fixed_dictionaries({"token": st.just(token) | texts | json_values}),
        "send": st.fixed_dictionaries({"group": groups, "text": texts | json_values},
                                      optional={"ref": texts | big_ints | json_values}),
        "ping": extras,
        "resume": st.fixed_dictionaries({"since": st.dictionaries(st.just(group_id) | texts, seqs, max_size=5)
                                         | json_values}),
        "read": st.fixed_dictionaries({"group": groups, "seq": seqs}),
    }
    shaped = st.one_of(*(st.tuples(st.just(op), fields, extras) for op, fields in ops.items())).map(
        lambda t: json.dumps({**t[2], "op": t[0], **t[1]}))
    wrong_op = st.tuples(json_values, json_values).map(lambda t: json.dumps({"op": t[0], "x": t[1]}))
    return st.one_of(
        shaped,
        wrong_op,
        json_values.map(json.dumps),                                      # JSON, rarely an object
        st.text(max_size=5000),                                          # mostly not JSON (a text frame
                                                                         # must be UTF-8: no lone surrogates)
        st.binary(max_size=2000),                                        # binary frames
        st.integers(1, 20_000).map(lambda n: "[" * n + "]" * n),         # deep nesting
        st.integers(20, 400).map(lambda n: '{"op":"read","group":"%s","seq":%s}' % (group_id, "9" * n)),
    )


# -- the person, their group, the stack -----------------------------------------------------

@pytest.fixture(scope="module")
def target(fuzz_stack):
    before = tracebacks(fuzz_stack)
    fuzzer = Fuzzer(fuzz_stack, "wsfuzz")
    figures = Figures("WebSocket (hypothesis)")
    yield {"url": fuzz_stack.ws_url, "token": fuzzer.token, "group": fuzzer.group_id, "figures": figures}
    assert_stack_alive(fuzz_stack, figures, before)
    figures.record()


def until_pong(ws, figures: Figures) -> None:
    """Read up to the pong; count any error frame that blames the gateway."""
    while True:
        frame = json.loads(ws.recv(TIMEOUT_SECS))
        if frame.get("op") == "error" and frame.get("code") in OUR_FAULT:
            figures.server_errors += 1
            raise AssertionError(f"the gateway failed on a client frame: {frame}")
        if frame.get("op") == "pong":
            return


@pytest.fixture(scope="module")
def page(target):
    # max_queue=None: the page's own messages may arrive after a pong and stay unread a while;
    # a bounded queue would stop the client reading and so hide the server's close frame.
    with connect(target["url"], open_timeout=TIMEOUT_SECS, max_size=None, max_queue=None) as ws:
        ws.send(json.dumps({"op": "auth", "token": target["token"]}))
        assert json.loads(ws.recv(TIMEOUT_SECS))["op"] == "ready"
        yield ws


def test_a_bad_frame_never_breaks_the_connection(target, page):
    figures = target["figures"]

    @fuzz_settings(EXAMPLES - EXAMPLES // PRE_AUTH_SHARE)
    @given(frames(target["group"], target["token"]))
    def case(frame):
        figures.cases += 1
        try:
            page.send(frame)
            page.send('{"op":"ping"}')
            until_pong(page, figures)
        except ConnectionClosed:
            figures.broken_connections += 1
            raise

    case()
    assert figures.broken_connections == 0


def test_a_bad_first_frame_closes_with_4001_and_nothing_worse(target):
    figures = target["figures"]

    @fuzz_settings(EXAMPLES // PRE_AUTH_SHARE)
    @given(frames(target["group"], target["token"]))
    def case(frame):
        figures.cases += 1
        with connect(target["url"], open_timeout=TIMEOUT_SECS, max_size=None) as ws:
            ws.send(frame)
            try:
                answer = json.loads(ws.recv(TIMEOUT_SECS))
            except ConnectionClosed as closed:
                if closed.rcvd is None or closed.rcvd.code != 4001:
                    figures.broken_connections += 1
                    raise AssertionError(f"closed with {closed.rcvd} instead of 4001") from None
                return
            assert answer["op"] == "ready", answer  # only a real token gets this far

    case()
