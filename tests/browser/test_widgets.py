"""The widgets on a site's ordinary page: one script tag, a token endpoint, and a person's new
messages appear as a toast and on the badge without a reload; a click on the toast opens the
group on the Chorus page; the inbox lists the groups, shows a group's messages and posts.

The "site" is served by the test through Playwright's routing: its page and its token endpoint
(which answers with the person's Chorus token, as a site's backend would with a site token).
Chromium treats a routed document as coming from no address at all, so its local-network checks
would refuse the page's WebSocket to 127.0.0.1; this module's browser turns those checks off."""

from __future__ import annotations

import json
import re

import pytest
from browsing import Remote, api_call, wait_until
from chat import unique
from playwright.sync_api import BrowserContext, expect

pytestmark = pytest.mark.browser


EXTRA_CHROMIUM_ARGS = ["--disable-features=LocalNetworkAccessChecks"]  # see the docstring

SITE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>An article</title>
<script type="module" src="/sdk/widgets.js"></script>
<style>span, button, div { color: red !important; font-size: 40px !important; }</style></head>
<body><h1>An article</h1><p>Words.</p>{widgets}</body></html>"""


def serve_site(context: BrowserContext, base_url: str, token: str, widgets: str) -> str:
    """The site's page at /site/page and its token endpoint at /site/token; the page's URL."""
    context.route(f"{base_url}/site/page", lambda route: route.fulfill(
        content_type="text/html", body=SITE_PAGE.replace("{widgets}", widgets)))
    context.route(f"{base_url}/site/token", lambda route: route.fulfill(
        content_type="application/json", body=json.dumps({"token": token})))
    return f"{base_url}/site/page"


def test_a_new_message_pops_up_and_bumps_the_badge_and_its_toast_opens_the_group(browser, stack):
    alice, bob = Remote(stack, "alice"), Remote(stack, "bob")
    group = alice.create_group(unique("Notices "))
    api_call(stack, "POST", f"/api/groups/{group}/join", token=bob.token)
    context = browser.new_context(base_url=stack.base_url)
    try:
        page = context.new_page()
        page.goto(serve_site(context, stack.base_url, bob.token,
                             '<chorus-badge token-endpoint="/site/token"></chorus-badge><chorus-toast></chorus-toast>'))
        badge = page.locator("chorus-badge span")
        expect(badge).to_be_hidden()
        wait_until(lambda: page.evaluate("document.querySelector('chorus-badge').chorus.state.status") == "connected")

        alice.post(group, ["the article has a sequel"])
        toast = page.locator("chorus-toast button", has_text="the article has a sequel")
        expect(toast).to_be_visible(timeout=2000)
        expect(toast).to_contain_text(re.compile(r"in Notices "))
        expect(badge).to_have_text("1", timeout=2000)
        # Shadow DOM: the site's "everything red and huge" rule does not reach inside.
        assert toast.evaluate("el => getComputedStyle(el).color") != "rgb(255, 0, 0)"

        page.add_init_script(f"localStorage.setItem('chorus.token', {bob.token!r})")  # logged in on Chorus
        toast.click()
        expect(page).to_have_url(f"{stack.base_url}/#group={group}")
        expect(page.locator(f'li.group.selected[data-group-id="{group}"]')).to_be_visible()
        expect(page.locator("#messages .message-text")).to_have_text(["the article has a sequel"])
    finally:
        context.close()


def test_the_inbox_shows_the_groups_and_their_messages_and_posts(browser, stack):
    alice, bob = Remote(stack, "alice"), Remote(stack, "bob")
    group = alice.create_group(unique("Desk "))
    alice.post(group, ["earlier words"])
    api_call(stack, "POST", f"/api/groups/{group}/join", token=bob.token)
    context = browser.new_context(base_url=stack.base_url)
    try:
        page = context.new_page()
        page.goto(serve_site(context, stack.base_url, bob.token, '<chorus-inbox token-endpoint="/site/token"></chorus-inbox>'))
        expect(page.locator(f'chorus-inbox nav button[data-group="{group}"]')).to_have_attribute("aria-pressed", "true")
        messages = page.locator("chorus-inbox li span")
        expect(messages).to_have_text(["earlier words"])

        alice.post(group, ["live words"])
        expect(messages).to_have_text(["earlier words", "live words"])

        page.locator("chorus-inbox input").fill("bob answers")
        page.locator("chorus-inbox form button").click()
        expect(messages).to_have_text(["earlier words", "live words", "bob answers"])
        history = api_call(stack, "GET", f"/api/groups/{group}/messages", token=alice.token)["messages"]
        assert [m["text"] for m in history][0] == "bob answers"
        # What the inbox showed live is read: bob's unread count there is back to 0.
        wait_until(lambda: {g["id"]: g["unread"] for g in api_call(stack, "GET", "/api/me", token=bob.token)["groups"]}
                   [group] == 0)
    finally:
        context.close()
