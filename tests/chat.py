"""Test clients in the product's words: people who register, log in, open pages.

A ``Person`` talks to the real HTTP API; ``person.open_page()`` opens a real
WebSocket and waits for ``ready``. Assertion helpers say what a user would
notice: ``assert_delivered_to``, ``assert_nothing_arrives``.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets

import aiohttp
import orjson

FRAME_TIMEOUT_SECS = 5.0
QUIET_SECS = 0.5  # how long "nothing arrives" is watched

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}{secrets.token_hex(3)}"


class ApiFailure(Exception):
    def __init__(self, status: int, body):
        super().__init__(f"{status}: {body}")
        self.status, self.body = status, body


class Api:
    def __init__(self, http: aiohttp.ClientSession, base_url: str):
        self.http, self.base_url = http, base_url

    async def call(self, method: str, path: str, *, json=None, token=None, data=None, headers=None):
        """(status, parsed body or None)."""
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.http.request(method, self.base_url + path, json=json, data=data,
                                     headers=headers) as response:
            raw = await response.read()
            body = orjson.loads(raw) if raw else None
            return response.status, body

    async def ok(self, method: str, path: str, **kwargs):
        status, body = await self.call(method, path, **kwargs)
        if status >= 300:
            raise ApiFailure(status, body)
        return body


class Person:
    def __init__(self, api: Api, ws_url: str, username: str, password: str):
        self.api, self.ws_url, self.username, self.password = api, ws_url, username, password
        self.token: str | None = None
        self.user: dict | None = None

    @classmethod
    async def register(cls, api: Api, ws_url: str, name: str = "user") -> "Person":
        person = cls(api, ws_url, unique(name), "correct horse battery")
        await api.ok("POST", "/api/register", json={
            "username": person.username, "password": person.password,
            "display_name": person.username.title()})
        body = await api.ok("POST", "/api/login", json={
            "username": person.username, "password": person.password})
        person.token, person.user = body["token"], body["user"]
        return person

    async def create_group(self, name: str | None = None) -> dict:
        body = await self.api.ok("POST", "/api/groups", json={"name": name or unique("group")},
                                 token=self.token)
        return body["group"]

    async def join(self, group: dict) -> dict:
        return (await self.api.ok("POST", f"/api/groups/{group['id']}/join", token=self.token))["group"]

    async def leave(self, group: dict) -> dict:
        return (await self.api.ok("POST", f"/api/groups/{group['id']}/leave", token=self.token))["group"]

    async def open_page(self) -> "Page":
        ws = await self.api.http.ws_connect(self.ws_url)
        page = Page(self, ws)
        await page.send({"op": "auth", "token": self.token})
        page.ready = await page.expect("ready")
        return page


class Page:
    """One open WebSocket of a person."""

    _refs = itertools.count(1)

    def __init__(self, person: Person, ws: aiohttp.ClientWebSocketResponse):
        self.person, self.ws = person, ws
        self.ready: dict | None = None
        self.seen: list[dict] = []   # frames read but not yet expected

    async def send(self, frame: dict | str) -> None:
        await self.ws.send_str(frame if isinstance(frame, str) else orjson.dumps(frame).decode())

    async def post(self, group: dict | str, text: str) -> str:
        ref = f"r{next(self._refs)}"
        group_id = group if isinstance(group, str) else group["id"]
        await self.send({"op": "send", "group": group_id, "text": text, "ref": ref})
        return ref

    async def post_and_ack(self, group, text: str) -> dict:
        ref = await self.post(group, text)
        return await self.expect("ack", ref=ref)

    async def next_frame(self, timeout: float = FRAME_TIMEOUT_SECS) -> dict:
        if self.seen:
            return self.seen.pop(0)
        msg = await self.ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"{self.person.username}: expected a text frame, got {msg.type} "
                                 f"{msg.data!r} {msg.extra!r}")
        return orjson.loads(msg.data)

    async def expect(self, op: str, timeout: float = FRAME_TIMEOUT_SECS, **fields) -> dict:
        """The first frame with this op and fields; other frames are kept for later."""
        skipped = []
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise AssertionError(f"{self.person.username}: no {op} {fields} within {timeout}s; "
                                         f"got {skipped}")
                try:
                    frame = await self.next_frame(remaining)
                except TimeoutError:
                    continue
                if frame.get("op") == op and all(frame.get(k) == v for k, v in fields.items()):
                    return frame
                skipped.append(frame)
        finally:
            self.seen[:0] = skipped

    async def answer(self, ref: str, timeout: float = 10) -> dict:
        """The ``ack`` or ``error`` frame for ``ref``, whichever comes; other frames stay for later."""
        others = []
        try:
            while True:
                frame = await self.next_frame(timeout=timeout)
                if frame.get("ref") == ref and frame["op"] in ("ack", "error"):
                    return frame
                others.append(frame)
        finally:
            self.seen[:0] = others

    async def closed(self, timeout: float = FRAME_TIMEOUT_SECS) -> tuple[int, str]:
        msg = await self.ws.receive(timeout=timeout)
        while msg.type == aiohttp.WSMsgType.TEXT:
            msg = await self.ws.receive(timeout=timeout)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING), msg
        return self.ws.close_code, (msg.extra or "")

    async def close(self) -> None:
        await self.ws.close()


async def assert_delivered_to(pages, group: dict, text: str) -> list[dict]:
    """Every page receives the message; returns the frames (same seq everywhere)."""
    frames = [await page.expect("message", group=group["id"], text=text) for page in pages]
    assert len({f["seq"] for f in frames}) == 1, frames
    return frames


async def assert_nothing_arrives(page: Page, *, op: str = "message", within: float = QUIET_SECS) -> None:
    try:
        frame = await page.expect(op, timeout=within)
    except AssertionError:
        return
    raise AssertionError(f"{page.person.username} received {frame}")
