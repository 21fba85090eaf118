"""Traffic and bookkeeping for the fault-injection suite (tests/compose/test_faults.py).

``Crowd``: N people spread over G groups, each with one WebSocket that behaves
like the page does: it reconnects with backoff after any close, sends
``resume`` with the seq up to which it holds every message, reloads a group
from history on ``reset``, and drops a ``(group, seq)`` it already shows
(counting those frames). S of them post at a fixed total rate and record
every ``ack``.

``Tally`` is what a run proves: acknowledged messages missing from storage
(lost), what each page shows against the stored history (missing, extra), how
long posting took to work again after the fault, and what people were told
meanwhile (error codes, close codes).

Every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import statistics
import time
from dataclasses import dataclass, field

import aiohttp
import orjson
from tenacity import (AsyncRetrying, retry_if_exception, retry_if_exception_type, stop_after_attempt,
                      wait_exponential, wait_incrementing)

from chat import Api, ApiFailure, Person

RECONNECT_BACKOFF_SECS = (0.2, 2.0)   # first delay, cap (doubling), like the page's
CONNECT_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)
HISTORY_PAGE = 100


@dataclass
class Tally:
    fault: str
    acked: int = 0
    failed_posts: int = 0            # answered with an error (the sender knows it did not go)
    unanswered_posts: int = 0        # no answer before the connection dropped: outcome unknown
    lost: int = 0                    # acked but not stored
    missing_on_pages: int = 0        # stored but not shown on a member's page at the end
    extra_on_pages: int = 0          # shown but not stored (should be impossible)
    duplicate_frames: int = 0        # a (group, seq) received again, dropped by the client
    reloads: int = 0                 # "reset" answers (group reloaded from history)
    recovery_secs: float = 0.0       # fault over -> every sender has an ack again
    told: collections.Counter = field(default_factory=collections.Counter)  # codes people saw

    def row(self) -> dict:
        return {**{k: v for k, v in self.__dict__.items() if k != "told"}, "told": dict(self.told)}


class PageLike:
    """One person's connection, with the page's recovery rules."""

    def __init__(self, person: Person, groups: list[str], tally: Tally):
        self.person, self.groups, self.tally = person, groups, tally
        self.shown: dict[str, set[int]] = {g: set() for g in groups}
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pending: dict[str, float] = {}          # ref -> sent at
        self.acked: list[tuple[str, int]] = []
        self.fault_over: float | None = None   # set when the fault is over
        self.recovered_at: float | None = None  # first ack of a post sent after that
        self._refs = itertools.count()

    def contiguous(self, group: str) -> int:
        seqs, n = self.shown[group], 0
        while n + 1 in seqs:
            n += 1
        return n

    async def run(self, stop: asyncio.Event) -> None:
        """Reconnect after every close, as the page does: backoff doubling from the first delay
        to the cap while connecting fails, back to the first delay after a session that ran."""
        first, cap = RECONNECT_BACKOFF_SECS
        while not stop.is_set():
            retrying = AsyncRetrying(
                retry=retry_if_exception_type(CONNECT_ERRORS),
                wait=wait_exponential(multiplier=first, min=first, max=cap),
                stop=lambda _state: stop.is_set(),
                before_sleep=self._lost,
                retry_error_callback=lambda _state: None,  # stopping while disconnected
            )
            async for attempt in retrying:
                with attempt:
                    await self._session(stop)
            self._ended()
            if not stop.is_set():
                await asyncio.sleep(first)

    def _lost(self, state) -> None:
        self.tally.told[f"connect: {type(state.outcome.exception()).__name__}"] += 1
        self._ended()

    def _ended(self) -> None:
        self.ws = None
        self.tally.unanswered_posts += len(self.pending)
        self.pending.clear()

    async def _session(self, stop: asyncio.Event) -> None:
        async with self.person.api.http.ws_connect(self.person.ws_url, timeout=5, heartbeat=None) as ws:
            await ws.send_str(orjson.dumps({"op": "auth", "token": self.person.token}).decode())
            self.ws = ws
            resumed = False
            closer = asyncio.create_task(stop.wait())
            try:
                while True:
                    receive = asyncio.create_task(ws.receive())
                    done, _ = await asyncio.wait({receive, closer}, return_when=asyncio.FIRST_COMPLETED)
                    if closer in done:
                        receive.cancel()
                        return
                    msg = receive.result()
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        self.tally.told[f"close {ws.close_code}"] += 1
                        return
                    frame = orjson.loads(msg.data)
                    op = frame.get("op")
                    if op == "ready" and not resumed:
                        resumed = True
                        await ws.send_str(orjson.dumps(
                            {"op": "resume", "since": {g: self.contiguous(g) for g in self.groups}}).decode())
                    elif op == "message":
                        self._show(frame["group"], frame["seq"])
                    elif op == "ack":
                        sent_at = self.pending.pop(frame.get("ref"), 0.0)
                        self.acked.append((frame["group"], frame["seq"]))
                        if (self.recovered_at is None and self.fault_over is not None
                                and sent_at >= self.fault_over):
                            self.recovered_at = time.monotonic()
                    elif op == "error":
                        self.pending.pop(frame.get("ref"), None)
                        self.tally.failed_posts += 1
                        self.tally.told[f"error {frame.get('code')}"] += 1
                    elif op == "reset":
                        self.tally.reloads += 1
                        await self.reload(frame["group"])
            finally:
                closer.cancel()

    def _show(self, group: str, seq: int) -> None:
        if seq in self.shown[group]:
            self.tally.duplicate_frames += 1
        self.shown[group].add(seq)

    async def reload(self, group: str) -> None:
        for seq in await stored_seqs(self.person, group, after=self.contiguous(group)):
            self.shown[group].add(seq)

    async def post(self, group: str) -> None:
        if self.ws is None or self.ws.closed:
            self.tally.failed_posts += 1
            self.tally.told["not connected"] += 1
            return
        ref = f"r{next(self._refs)}"
        self.pending[ref] = time.monotonic()
        try:
            await self.ws.send_str(orjson.dumps({"op": "send", "group": group, "ref": ref,
                                                 "text": f"fault test {ref}"}).decode())
        except (ConnectionError, RuntimeError):
            self.pending.pop(ref, None)
            self.tally.failed_posts += 1


async def stored_seqs(person: Person, group: str, *, after: int = 0) -> list[int]:
    """Every stored seq of ``group`` after ``after``, through the history API (bounded paging)."""
    seqs: list[int] = []
    for _ in range(10_000):
        status, body = await person.api.call(
            "GET", f"/api/groups/{group}/messages?after={after}&limit={HISTORY_PAGE}", token=person.token)
        if status != 200:
            raise AssertionError(f"history of {group}: {status} {body}")
        seqs += [m["seq"] for m in body["messages"]]
        if not body["more"]:
            return seqs
        after = seqs[-1]
    raise AssertionError("history paging did not end")


class Crowd:
    """``people`` in ``groups`` groups (each person in ``per_person`` of them), one PageLike each."""

    def __init__(self, people: list[Person], groups: list[str], per_person: int):
        self.people, self.groups, self.per_person = people, groups, per_person

    @classmethod
    async def gather(cls, api: Api, ws_url: str, *, people: int, groups: int, per_person: int) -> Crowd:
        sem = asyncio.Semaphore(4)  # argon2 on the auth side bounds this anyway

        async def register(i: int) -> Person:
            async with sem:
                return await _retrying(lambda: Person.register(api, ws_url, f"f{i}_"), attempts=8)
        crowd = await asyncio.gather(*(register(i) for i in range(people)))
        owner = crowd[0]
        group_ids = [(await owner.create_group())["id"] for _ in range(groups)]
        joins = []
        for i, person in enumerate(crowd):
            for g in cls.groups_of(i, group_ids, per_person):
                if person is not owner:
                    joins.append(person.join({"id": g}))
        for chunk in range(0, len(joins), 50):
            await asyncio.gather(*joins[chunk:chunk + 50])
        return cls(crowd, group_ids, per_person)

    @staticmethod
    def groups_of(i: int, groups: list[str], per_person: int) -> list[str]:
        chosen = [groups[(i * per_person + j) % len(groups)] for j in range(per_person)]
        return chosen if i else list(groups)  # the owner is in every group it made

    async def run(self, fault: str, inject, *, rate: float, senders: int, before_secs: float,
                  after_secs: float, recovery_limit_secs: float) -> Tally:
        """Traffic at ``rate`` msgs/s; ``inject()`` (a coroutine) is the fault; returns the tally."""
        tally = Tally(fault)
        pages = [PageLike(p, self.groups_of(i, self.groups, self.per_person), tally)
                 for i, p in enumerate(self.people)]
        # Pages open with what is already stored, as after loading history.
        stored = {g: set(await stored_seqs(self.people[0], g)) for g in self.groups}
        for page in pages:
            page.shown = {g: set(stored[g]) for g in page.groups}
        stop_pages, stop_posting = asyncio.Event(), asyncio.Event()
        readers = [asyncio.create_task(p.run(stop_pages)) for p in pages]
        await _until(lambda: all(p.ws is not None for p in pages), 60,
                     lambda: f"every page connected ({sum(p.ws is None for p in pages)} not): {tally}")
        posting = pages[1:senders + 1]
        posters = [asyncio.create_task(_post_loop(p, rate / len(posting), stop_posting)) for p in posting]
        await asyncio.sleep(before_secs)
        fault_over = await inject()
        for page in posting:
            page.fault_over = fault_over
        await _until(lambda: all(p.recovered_at is not None for p in posting), recovery_limit_secs,
                     "every sender has a post acked again")
        tally.recovery_secs = max(p.recovered_at for p in posting) - fault_over
        await asyncio.sleep(after_secs)
        stop_posting.set()
        await asyncio.gather(*posters)
        await _until(lambda: all(not p.pending for p in posting), 10, "answers to the last posts")
        await asyncio.sleep(1.0)  # the last deliveries
        stop_pages.set()
        await asyncio.gather(*readers)
        await self._reconcile(pages, tally)
        return tally

    async def _reconcile(self, pages: list[PageLike], tally: Tally) -> None:
        stored = {g: set(await stored_seqs(self.people[0], g)) for g in self.groups}
        acked = {a for p in pages for a in p.acked}
        tally.acked = len(acked)
        tally.lost = sum(1 for g, seq in acked if seq not in stored[g])
        for page in pages:
            for g, shown in page.shown.items():
                tally.missing_on_pages += len(stored[g] - shown)
                tally.extra_on_pages += len(shown - stored[g])


async def _retrying(make, attempts: int = 4):
    """``await make()``, again after a 503 (a loaded machine makes argon2 miss its deadline)."""
    retrying = AsyncRetrying(retry=retry_if_exception(lambda exc: isinstance(exc, ApiFailure) and exc.status == 503),
                             stop=stop_after_attempt(attempts), wait=wait_incrementing(start=1.0, increment=1.0),
                             reraise=True)

    async def attempt():  # tenacity awaits only a coroutine function's result
        return await make()
    return await retrying(attempt)


async def _post_loop(page: PageLike, rate: float, stop: asyncio.Event) -> None:
    interval, n = 1.0 / rate, 0
    start = time.monotonic()
    while not stop.is_set() and n < 1_000_000:
        await page.post(page.groups[n % len(page.groups)])
        n += 1
        await asyncio.sleep(max(0.0, start + n * interval - time.monotonic()))


async def _until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what() if callable(what) else what}")
        await asyncio.sleep(0.05)


def table(rows: list[dict]) -> str:
    """Markdown: one line per fault kind, over its repetitions."""
    by_fault = collections.defaultdict(list)
    for row in rows:
        by_fault[row["fault"]].append(row)
    lines = ["| fault | runs | acked | lost | missing on pages | shown, not stored | duplicate frames dropped "
             "| reloads | recovery p50 / max (s) | people were told |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for fault, runs in by_fault.items():
        recovery = [r["recovery_secs"] for r in runs]
        told = collections.Counter()
        for r in runs:
            told.update(r["told"])
        lines.append(
            f"| {fault} | {len(runs)} | {sum(r['acked'] for r in runs)} | {sum(r['lost'] for r in runs)} "
            f"| {sum(r['missing_on_pages'] for r in runs)} | {sum(r['extra_on_pages'] for r in runs)} "
            f"| {sum(r['duplicate_frames'] for r in runs)} | {sum(r['reloads'] for r in runs)} "
            f"| {statistics.median(recovery):.1f} / {max(recovery):.1f} "
            f"| {', '.join(f'{k} ×{v}' for k, v in told.most_common(4)) or '-'} |")
    return "\n".join(lines)
