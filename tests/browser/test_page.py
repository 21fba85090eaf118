"""Two people in two browser contexts chatting through the real page and stack."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from chat import unique

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
