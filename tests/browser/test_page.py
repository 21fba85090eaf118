"""Two people in two browser contexts chatting through the real page and stack."""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest
from chat import unique
from playwright.sync_api import Page, expect
from websockets.sync.client import connect as ws_connect

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def register_and_log_in(page: Page, username: str) -> None:
    page.goto("/")
    page.click("#auth-toggle")                      # to "register"
    page.fill("#auth-username", username)
    page.fill("#auth-password", PASSWORD)
    page.fill("#auth-display-name", username.title())
    page.click("#auth-submit")
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#me")).to_have_text(username.title())
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "connected")


def create_group(page: Page, name: str) -> str:
    page.click("#browse-groups")
    page.fill("#new-group-name", name)
    page.click("#new-group-submit")
    item = page.locator("li.group", has_text=name)
    expect(item).to_be_visible()
    close_browser_if_open(page)
    return item.get_attribute("data-group-id")


def join_group(page: Page, group_id: str) -> None:
    page.click("#browse-groups")
    page.locator(f'.directory-entry[data-group-id="{group_id}"] .join').click()
    expect(page.locator(f'li.group[data-group-id="{group_id}"]')).to_be_visible()
    close_browser_if_open(page)


def close_browser_if_open(page: Page) -> None:
    close = page.locator("#browse-close")
    if close.is_visible():
        close.click()


def open_group(page: Page, group_id: str) -> None:
    page.locator(f'li.group[data-group-id="{group_id}"]').click()


def post(page: Page, text: str) -> None:
    page.fill("#composer-text", text)
    page.press("#composer-text", "Enter")


def test_a_message_appears_on_the_other_persons_page_and_bumps_the_badge_of_a_hidden_group(new_page):
    alice, bob = new_page(), new_page()
    alice_name, bob_name = unique("alice"), unique("bob")
    register_and_log_in(alice, alice_name)
    register_and_log_in(bob, bob_name)

    lobby = create_group(alice, unique("Lobby "))
    side = create_group(alice, unique("Side "))
    join_group(bob, lobby)
    join_group(bob, side)

    # Both look at the lobby; alice posts there: bob sees it without a reload.
    open_group(alice, lobby)
    open_group(bob, lobby)
    post(alice, "hello from alice")
    message = bob.locator("#messages .message", has_text="hello from alice")
    expect(message).to_be_visible()
    expect(message.locator(".message-from")).to_have_text(alice_name.title())
    expect(alice.locator("#messages .message:not(.pending)", has_text="hello from alice")).to_be_visible()

    # Alice posts to the side group, which bob is not looking at: its badge goes up.
    open_group(alice, side)
    post(alice, "psst, side channel")
    post(alice, "and another")
    badge = bob.locator(f'li.group[data-group-id="{side}"] .badge')
    expect(badge).to_have_text("2")
    expect(bob.locator("#messages .message", has_text="psst")).to_have_count(0)
    expect(bob).to_have_title(re.compile(r"^\(2\)"))

    # Opening the side group shows both messages, in order, and clears the badge.
    open_group(bob, side)
    texts = bob.locator("#messages .message .message-text")
    expect(texts).to_have_text(["psst, side channel", "and another"])
    expect(badge).to_be_hidden()

    # And bob can answer.
    post(bob, "got it")
    expect(alice.locator("#messages .message", has_text="got it")).to_be_visible()


# Helpers for people who act outside the browser: HTTP for accounts and groups, a plain
# WebSocket for posting (there is no HTTP route to post). Synchronous on purpose: they run
# inside sync Playwright tests.

def api_call(stack, method: str, path: str, body=None, token: str | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(stack.base_url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


class Remote:
    """A person driven through the API and a raw WebSocket, not through a page."""

    def __init__(self, stack, name: str):
        self.stack, self.username = stack, unique(name)
        api_call(stack, "POST", "/api/register",
                 {"username": self.username, "password": PASSWORD, "display_name": self.username.title()})
        login = api_call(stack, "POST", "/api/login", {"username": self.username, "password": PASSWORD})
        self.token, self.user = login["token"], login["user"]

    def create_group(self, name: str) -> str:
        return api_call(self.stack, "POST", "/api/groups", {"name": name}, self.token)["group"]["id"]

    def post(self, group_id: str, texts) -> None:
        """Post each text and wait for its ack, so they are sequenced in this order."""
        with ws_connect(self.stack.ws_url, open_timeout=10) as ws:
            ws.send(json.dumps({"op": "auth", "token": self.token}))
            self._expect(ws, lambda f: f.get("op") == "ready")
            for i, text in enumerate(texts):
                ref = f"t{i}"
                ws.send(json.dumps({"op": "send", "group": group_id, "text": text, "ref": ref}))
                self._expect(ws, lambda f, ref=ref: f.get("op") == "ack" and f.get("ref") == ref)

    @staticmethod
    def _expect(ws, matches, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if frame.get("op") == "error":
                raise AssertionError(f"error frame: {frame}")
            if matches(frame):
                return frame


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def message_texts(page: Page) -> list[str]:
    return page.locator("#messages .message:not(.pending) .message-text").all_text_contents()


def test_a_page_that_was_offline_shows_every_message_in_order_after_it_reconnects(new_page, stack):
    alice = Remote(stack, "alice")
    group_a = alice.create_group(unique("Alpha "))
    group_b = alice.create_group(unique("Beta "))
    bob = new_page()
    register_and_log_in(bob, unique("bob"))
    join_group(bob, group_a)
    join_group(bob, group_b)
    open_group(bob, group_a)
    alice.post(group_a, ["before the outage"])
    expect(bob.locator("#messages .message-text")).to_have_text(["before the outage"])

    # The network goes away. Chromium's emulated offline does not necessarily close an open
    # WebSocket, so the test also drops it the way a lost network does.
    bob.context.set_offline(True)
    bob.evaluate("window.chorusDebug.dropSocket()")
    expect(bob.locator("#conn-status")).to_have_attribute("data-state", "offline")
    expect(bob.locator("#conn-text")).to_have_text(re.compile("Offline"))

    a_texts = [f"alpha {i}" for i in range(1, 6)]
    b_texts = [f"beta {i}" for i in range(1, 4)]
    alice.post(group_a, a_texts)
    alice.post(group_b, b_texts)
    bob.wait_for_timeout(300)
    # Still offline: the page waits for the network instead of reconnecting.
    expect(bob.locator("#conn-status")).to_have_attribute("data-state", "offline")
    expect(bob.locator("#messages .message-text")).to_have_text(["before the outage"])

    bob.context.set_offline(False)
    expect(bob.locator("#conn-status")).to_have_attribute("data-state", "connected")
    expect(bob.locator("#messages .message-text")).to_have_text(["before the outage", *a_texts])
    expect(bob.locator("#catching-up")).to_be_hidden()
    badge = bob.locator(f'li.group[data-group-id="{group_b}"] .badge')
    expect(badge).to_have_text("3")
    expect(bob.locator(f'li.group[data-group-id="{group_a}"] .badge')).to_be_hidden()
    assert message_texts(bob) == ["before the outage", *a_texts]  # no duplicates

    open_group(bob, group_b)
    expect(bob.locator("#messages .message-text")).to_have_text(b_texts)
    expect(badge).to_be_hidden()
    assert message_texts(bob) == b_texts

    # Both were read: the server's read markers say so, and so does a reloaded page.
    bob_token = bob.evaluate("localStorage.getItem('chorus.token')")
    wait_until(lambda: all(g["unread"] == 0 for g in api_call(stack, "GET", "/api/me", token=bob_token)["groups"]))
    bob.reload()
    expect(bob.locator("#conn-status")).to_have_attribute("data-state", "connected")
    expect(bob.locator(f'li.group[data-group-id="{group_a}"]')).to_be_visible()
    expect(bob.locator("li.group .badge:visible")).to_have_count(0)


# Where a message's text is on screen (px from the viewport's top), in one synchronous step.
MEASURE = """text => {
  const li = [...document.querySelectorAll('#messages .message')]
    .find((el) => el.querySelector('.message-text').textContent === text);
  return li.getBoundingClientRect().top;
}"""
SCROLL_TO_TOP_AND_MEASURE = """text => {
  document.querySelector('#messages-scroller').scrollTop = 0;
  return (""" + MEASURE + """)(text);
}"""


def test_history_loads_older_messages_on_scroll(new_page, stack):
    alice = Remote(stack, "alice")
    group = alice.create_group(unique("Archive "))
    texts = [f"archived message {i:03d}" for i in range(1, 71)]
    alice.post(group, texts)

    bob = new_page()
    register_and_log_in(bob, unique("bob"))
    join_group(bob, group)
    open_group(bob, group)

    # The latest page, at the bottom.
    messages = bob.locator("#messages .message-text")
    expect(messages.last).to_have_text(texts[-1])
    expect(messages.last).to_be_in_viewport()
    expect(bob.locator("#messages .message-text", has_text=texts[0])).to_have_count(0)
    shown = messages.count()
    assert 0 < shown < len(texts)
    first_shown = texts[len(texts) - shown]

    # Scrolling to the top loads the older ones above, without moving what is on screen.
    top_before = bob.evaluate(SCROLL_TO_TOP_AND_MEASURE, first_shown)
    expect(messages).to_have_count(len(texts))
    assert abs(bob.evaluate(MEASURE, first_shown) - top_before) < 2
    expect(bob.locator("#history-loader")).to_be_hidden()

    # Up to the very first message, each once, in order.
    bob.evaluate(SCROLL_TO_TOP_AND_MEASURE, texts[0])
    expect(bob.locator("#messages .message", has_text=texts[0])).to_be_visible()
    expect(bob.locator("#history-start")).to_be_visible()
    assert message_texts(bob) == texts


def test_the_members_panel_shows_who_is_online(new_page, stack):
    alice = Remote(stack, "alice")
    group = alice.create_group(unique("Crew "))
    bob = new_page()
    bob_name = unique("bob")
    register_and_log_in(bob, bob_name)
    join_group(bob, group)
    open_group(bob, group)

    bob.click("#members-toggle")
    bob_token = bob.evaluate("localStorage.getItem('chorus.token')")
    bob_id = api_call(stack, "GET", "/api/me", token=bob_token)["user"]["id"]
    bob_item = bob.locator(f'.member[data-user-id="{bob_id}"]')
    alice_item = bob.locator(f'.member[data-user-id="{alice.user["id"]}"]')
    expect(bob_item).to_have_class(re.compile(r"\bonline\b"))
    expect(alice_item).to_be_visible()
    expect(alice_item).not_to_have_class(re.compile(r"\bonline\b"))  # alice has no page open

    # Alice opens a page: reopening the panel shows her online.
    with ws_connect(stack.ws_url, open_timeout=10) as ws:
        ws.send(json.dumps({"op": "auth", "token": alice.token}))
        Remote._expect(ws, lambda f: f.get("op") == "ready")
        bob.click("#members-toggle")
        expect(bob.locator("#members-panel")).to_be_hidden()
        bob.click("#members-toggle")
        expect(alice_item).to_have_class(re.compile(r"\bonline\b"))
