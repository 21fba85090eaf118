"""One WebSocket for every tab of a browser: two tabs of one browser context on the page get the
same messages while the server holds ONE session for the person, and closing the tab that holds
the socket moves it to the other tab without losing a message (chorus.js, docs/sdk.md "Tabs").

The server-side count is the gateway's own session cap: this stack lets an account hold one
session at a time, so a second socket from either tab would be refused (4008) and that tab would
never connect. A page in another browser context (its own storage, its own socket) shows the cap
biting."""

from __future__ import annotations

import pytest
from browsing import Remote, api_call, message_texts, open_group, register_and_log_in
from chat import unique
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def one_session_stack(start_stack):
    with start_stack({"CHORUS_MAX_SESSIONS_PER_ACCOUNT": "1", "CHORUS_REGISTRATIONS_PER_IP": "1000000"}) as stack:
        yield stack


def count_websockets(page: Page) -> list:
    opened = []
    page.on("websocket", lambda ws: opened.append(ws.url))
    return opened


def connected(page: Page) -> None:
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "connected")


def test_two_tabs_share_one_websocket_and_the_second_takes_it_over_without_losing_a_message(browser,
                                                                                           one_session_stack):
    stack = one_session_stack
    alice = Remote(stack, "alice")
    group = alice.create_group(unique("Shared "))
    context = browser.new_context(base_url=stack.base_url)
    try:
        first = context.new_page()
        first_sockets = count_websockets(first)
        register_and_log_in(first, unique("bob"))
        token = first.evaluate("localStorage.getItem('chorus.token')")
        api_call(stack, "POST", f"/api/groups/{group}/join", token=token)
        expect(first.locator(f'li.group[data-group-id="{group}"]')).to_be_visible()

        second = context.new_page()
        second_sockets = count_websockets(second)
        second.goto("/")
        connected(second)  # through the first tab's socket: a socket of its own would be refused
        for tab in (first, second):
            open_group(tab, group)
        alice.post(group, ["one for both tabs"])
        for tab in (first, second):
            expect(tab.locator("#messages .message-text")).to_have_text(["one for both tabs"])
        assert (len(first_sockets), len(second_sockets)) == (1, 0)
        assert first.evaluate("window.chorusDebug.leader()") and not second.evaluate("window.chorusDebug.leader()")

        # The cap is real: a browser that shares nothing with these tabs cannot open a second session.
        elsewhere = browser.new_context(base_url=stack.base_url)
        other = elsewhere.new_page()
        other.add_init_script(f"localStorage.setItem('chorus.token', {token!r})")
        other.goto("/")
        expect(other.locator("#toasts")).to_contain_text("too many sessions")
        expect(other.locator("#conn-status")).not_to_have_attribute("data-state", "connected")
        elsewhere.close()

        # The leader's tab closes; a message posted right then still reaches the other tab, once.
        first.close()
        alice.post(group, ["while the socket moved"])
        connected(second)
        alice.post(group, ["after the move"])
        expect(second.locator("#messages .message-text")).to_have_text(
            ["one for both tabs", "while the socket moved", "after the move"])
        assert message_texts(second) == ["one for both tabs", "while the socket moved", "after the move"]
        assert len(second_sockets) == 1 and second.evaluate("window.chorusDebug.leader()")

        # The new leader sends for itself too.
        second.fill("#composer-text", "from the tab that took over")
        second.press("#composer-text", "Enter")
        expect(second.locator("#messages .message:not(.pending)", has_text="from the tab that took over")).to_be_visible()
    finally:
        context.close()
