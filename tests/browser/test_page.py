"""Two people in two browser contexts chatting through the real page and stack."""

from __future__ import annotations

import json
import re

import pytest
from browsing import (Remote, api_call, create_group, join_group, message_texts, open_group, post,
                      register_and_log_in, wait_until)
from chat import unique
from playwright.sync_api import expect
from websockets.sync.client import connect as ws_connect

pytestmark = pytest.mark.browser


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
