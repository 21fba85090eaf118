"""Sends whose answer is lost: the page sends them again, with the same idempotency key, after it
reconnects, and shows each message once. The WebSocket between page and gateway is routed through
the test, which cuts it right after a send (before the gateway sees it, or after the message is
stored but before its ack reaches the page). The broker's side of the key is tested with it."""

from __future__ import annotations

import json
import re
import threading

import pytest
from browsing import api_call, create_group, message_texts, post, register_and_log_in
from chat import unique
from playwright.sync_api import Page, WebSocketRoute, expect

from chorus.wire.limits import MAX_IDEMPOTENCY_KEY_CHARS

pytestmark = pytest.mark.browser


class CuttingRoute:
    """Relays the page's WebSockets to the gateway, keeping every `send` frame the page writes.

    ``cut_next_send()``: the next send vanishes with its connection, closed before the frame
    reaches the gateway (nothing is stored, no answer can come back).
    ``lose_next_ack()``: the next send reaches the gateway, which stores it and acks it; the ack
    is swallowed and the connection closed instead (stored, but the page never hears so).
    """

    def __init__(self, page: Page):
        self.sends: list[dict] = []
        self.connections = 0
        self._cut = threading.Event()
        self._lose_ack = threading.Event()
        self._ack_to_lose = None
        page.route_web_socket(re.compile(r"/ws$"), self._route)

    def cut_next_send(self) -> None:
        self._cut.set()

    def lose_next_ack(self) -> None:
        self._lose_ack.set()

    def _route(self, ws: WebSocketRoute) -> None:
        self.connections += 1
        server = ws.connect_to_server()

        def from_page(message) -> None:
            frame = json.loads(message)
            if frame.get("op") == "send":
                self.sends.append(frame)
                if self._cut.is_set():
                    self._cut.clear()
                    server.close()
                    ws.close(code=1001, reason="cut by the test")
                    return
                if self._lose_ack.is_set():
                    self._lose_ack.clear()
                    self._ack_to_lose = frame["ref"]
            server.send(message)

        def from_server(message) -> None:
            frame = json.loads(message)
            if frame.get("op") == "ack" and self._ack_to_lose is not None and frame.get("ref") == self._ack_to_lose:
                self._ack_to_lose = None
                server.close()
                ws.close(code=1001, reason="ack lost by the test")
                return
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)


def test_a_send_cut_off_before_its_answer_is_sent_again_with_its_key_and_shown_once(new_page):
    page = new_page()
    route = CuttingRoute(page)
    register_and_log_in(page, unique("carol"))
    create_group(page, unique("Retry "))
    expect(page.locator("li.group.selected")).to_be_visible()

    post(page, "same words")
    expect(page.locator("#messages .message:not(.pending)", has_text="same words")).to_have_count(1)
    [first] = route.sends

    # The same text again, and this time the connection is cut before the server sees it.
    route.cut_next_send()
    post(page, "same words")
    pending = page.locator("#messages .message.pending", has_text="same words")
    expect(pending).to_have_count(1)  # shown at once, greyed, while the answer is missing
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "connected")  # came back
    expect(page.locator("#messages .message.pending")).to_have_count(0)
    expect(page.locator("#messages .message.failed")).to_have_count(0)
    assert message_texts(page) == ["same words", "same words"]  # two sends, two messages, each once

    _first, cut, retried = route.sends
    assert route.connections == 2
    assert cut["idempotency_key"] == retried["idempotency_key"], "a retry carries the key of the first try"
    assert (cut["text"], cut["group"]) == (retried["text"], retried["group"])
    assert first["idempotency_key"] != cut["idempotency_key"], "a new message has a new key, even with the same text"
    for frame in route.sends:
        assert isinstance(frame["idempotency_key"], str)
        assert 0 < len(frame["idempotency_key"]) <= MAX_IDEMPOTENCY_KEY_CHARS


def test_a_send_stored_but_whose_ack_was_lost_is_sent_again_and_shown_once(new_page, stack):
    page = new_page()
    route = CuttingRoute(page)
    register_and_log_in(page, unique("dave"))
    group = create_group(page, unique("Exactly once "))
    expect(page.locator("li.group.selected")).to_be_visible()

    route.lose_next_ack()
    post(page, "only once, please")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "connected")
    expect(page.locator("#messages .message.pending")).to_have_count(0)
    expect(page.locator("#messages .message:not(.pending)", has_text="only once, please")).to_have_count(1)
    assert route.connections == 2

    stored, retried = route.sends
    assert stored["idempotency_key"] == retried["idempotency_key"]
    token = page.evaluate("localStorage.getItem('chorus.token')")
    history = api_call(stack, "GET", f"/api/groups/{group}/messages", token=token)["messages"]
    assert [m["text"] for m in history] == ["only once, please"], "the server kept one message for the key"
    page.wait_for_timeout(300)  # nothing more arrives later
    assert message_texts(page) == ["only once, please"]
