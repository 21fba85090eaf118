"""What the page promises about trust: it runs under a strict Content-Security-Policy, people who
share a display name are told apart by @username, and a backend's post is shown as a bot."""

from __future__ import annotations

import re

import pytest
from browsing import Remote, join_group, open_group, post, register_and_log_in
from chat import unique
from generic_grpc import backend_tls, call_without_stubs
from playwright.sync_api import Page, expect

from chorus.webgate.security import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.browser

# Runs before the page's own scripts (injected by the browser, which no policy blocks): every
# policy violation the page causes is kept where the test can read it.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
});
"""


def watch_for_trouble(page: Page) -> list[str]:
    """Console errors and uncaught exceptions of ``page``, as they happen."""
    trouble: list[str] = []
    page.on("console", lambda msg: trouble.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: trouble.append(f"uncaught: {exc}"))
    page.add_init_script(RECORD_VIOLATIONS)
    return trouble


def test_the_page_runs_under_its_content_security_policy_without_a_single_violation(new_page):
    page = new_page()
    trouble = watch_for_trouble(page)
    response = page.goto("/")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY

    # Everything the page does: modules, stylesheet, icon, fetch, the WebSocket (connect-src
    # 'self' must cover the same-origin ws: URL), rendering with CSSOM styles, a message.
    name = unique("csp")
    register_and_log_in(page, name)
    page.click("#browse-groups")
    page.fill("#new-group-name", unique("Policy "))
    page.click("#new-group-submit")
    expect(page.locator("li.group.selected")).to_be_visible()
    page.click("#browse-close")
    post(page, "under the policy")
    expect(page.locator("#messages .message:not(.pending)", has_text="under the policy")).to_be_visible()
    page.click("#members-toggle")
    expect(page.locator(".member")).to_have_count(1)
    group = page.locator("li.group.selected").get_attribute("data-group-id")
    page.reload()
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "connected")
    open_group(page, group)
    expect(page.locator("#messages .message", has_text="under the policy")).to_be_visible()

    assert page.evaluate("window.__violations") == []
    assert trouble == []

    # The policy is really enforced, and the listener really hears it: an inline style is refused.
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<i style=\"color: red\">x</i>')")
    page.wait_for_function("window.__violations.length > 0")
    assert re.match(r"style-src", page.evaluate("window.__violations[0]"))


def test_two_people_with_the_same_display_name_are_told_apart_by_their_username(new_page, stack):
    impostor = Remote(stack, "alice", display_name="Alice")
    group = impostor.create_group(unique("Twins "))
    page = new_page()
    alice = unique("alice")
    register_and_log_in(page, alice, display_name="Alice")
    join_group(page, group)
    open_group(page, group)

    impostor.post(group, ["it's me, Alice"])
    post(page, "no, I am Alice")

    theirs = page.locator("#messages .message", has_text="it's me, Alice")
    mine = page.locator("#messages .message:not(.pending)", has_text="no, I am Alice")
    expect(theirs.locator(".message-from")).to_have_text("Alice")
    expect(theirs.locator(".message-username")).to_have_text(f"@{impostor.username}")
    expect(mine.locator(".message-from")).to_have_text("Alice")
    expect(mine.locator(".message-username")).to_have_text(f"@{alice}")
    expect(mine.locator(".message-username")).to_be_visible()

    page.click("#members-toggle")
    member_usernames = page.locator(".member .member-username")
    expect(member_usernames).to_have_count(2)
    assert sorted(member_usernames.all_text_contents()) == sorted([f"@{alice}", f"@{impostor.username}"])


def test_a_backends_post_is_shown_as_a_bot_even_under_a_persons_name(new_page, stack):
    owner = Remote(stack, "owner", display_name="Alice")
    group = owner.create_group(unique("Billing "))
    page = new_page()
    register_and_log_in(page, unique("bob"))
    join_group(page, group)
    open_group(page, group)

    owner.post(group, ["a word from a person"])
    # A backend posts under the very name a member has.
    call_without_stubs(f"127.0.0.1:{stack.ports['broker-grpc']}", "chorus.messages.v1.Messages", "PostMessage",
                       tls=backend_tls(stack.keys, "billing", "messages.PostMessage"),
                       group_id=group, sender_name="Alice", text="Your invoice is ready")

    bot = page.locator("#messages .message", has_text="Your invoice is ready")
    person = page.locator("#messages .message", has_text="a word from a person")
    expect(bot).to_have_class(re.compile(r"\bsystem\b"))
    expect(bot.locator(".message-bot")).to_have_text(re.compile("bot", re.IGNORECASE))
    expect(bot.locator(".message-bot")).to_be_visible()
    expect(bot.locator(".message-username")).to_have_count(0)  # no @handle to pass for a person
    expect(person).not_to_have_class(re.compile(r"\bsystem\b"))
    expect(person.locator(".message-bot")).to_have_count(0)
    expect(person.locator(".message-username")).to_have_text(f"@{owner.username}")

    # The same after a reload, from history.
    page.reload()
    open_group(page, group)
    expect(bot.locator(".message-bot")).to_be_visible()
    expect(bot.locator(".message-username")).to_have_count(0)
