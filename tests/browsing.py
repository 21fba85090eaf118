"""People for the browser tests: some act through the real page (Playwright), others beside it
through the HTTP API and a raw WebSocket, as a script or another client would."""

from __future__ import annotations

import json
import time
import urllib.request

from chat import unique
from playwright.sync_api import Page, expect
from websockets.sync.client import connect as ws_connect

PASSWORD = "correct horse battery"


def register_and_log_in(page: Page, username: str, display_name: str | None = None) -> None:
    display_name = display_name or username.title()
    page.goto("/")
    page.click("#auth-toggle")                      # to "register"
    page.fill("#auth-username", username)
    page.fill("#auth-password", PASSWORD)
    page.fill("#auth-display-name", display_name)
    page.click("#auth-submit")
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#me")).to_have_text(display_name)
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

    def __init__(self, stack, name: str, display_name: str | None = None):
        self.stack, self.username = stack, unique(name)
        api_call(stack, "POST", "/api/register",
                 {"username": self.username, "password": PASSWORD, "display_name": display_name or self.username.title()})
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
