"""Cluster benchmark (issue 13, "Measure"): failover time over repeated kill -9, and intake (posts/s
one to three brokers take in) with broker CPU per post.

    .venv/bin/python bench/cluster.py                                  # both parts
    .venv/bin/python bench/cluster.py --parts failover --kills 20 --output out.md
    .venv/bin/python bench/cluster.py --database-url postgresql://postgres@127.0.0.1:5432/test

Every stack is started service by service as real processes (tests/processes.Service, the same
runner as tests/test_cluster.py): auth, membership, brokers, one webgate, on a fresh PostgreSQL
schema (or SQLite in a throw-away directory), internal traffic authenticated with fresh keys.

- ``failover``: three brokers (--cluster-node b1..b3); people in two-member groups spread over the
  brokers, every page open. Each round picks a live broker owning at least one group (rendezvous
  over the live names, as the cluster does), a member of one of its groups posts every
  ``--post-interval-ms`` (each post at its own scheduled time, with an idempotency key), the broker
  is killed with SIGKILL at t0, and the round's figure is t0 -> the first ack of a post sent at or
  after t0 for that group. The killed broker is then started again with the same arguments and
  the round ends when it is live (its new incarnation holds a lease) and a post to its group is
  acknowledged. At the end every acknowledged post must be in history, once, at its acked seq.
- ``intake``: 100 two-member groups (so intake, not fan-out, is the limit), 100 senders each on
  its own WebSocket, held by the Node generator (bench/node/gen.js), each post at its own
  scheduled time t0 + k/R. R ramps in steps; per step: acked/s, ack latency p50/p99, errors, CPU
  seconds per acked post of the brokers (and of the webgate and PostgreSQL), and the
  generator's own CPU. Configurations: one broker on SQLite, then 1, 2 and 3 brokers on PostgreSQL.

Every process started here is stopped by its PID (SIGTERM, then SIGKILL), also on an error or
Ctrl-C; the schema is dropped. Every loop is bounded in count and time; all traffic is loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

import aiohttp
import orjson
import psycopg

import fanout
import run as ramp  # the Node generator's driver and /proc readers

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the cluster tests' process runner, so both start services alike
from processes import Service, service_env  # noqa: E402

from chorus.common.keys import ensure_keys  # noqa: E402
from chorus.wire.cluster import rendezvous_owner  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD = "benchmark-pw"
SETUP_CONCURRENCY = 8           # argon2 on the auth side (~20 hashes/s on 2 cores) bounds set-up anyway
HISTORY_PAGE = 100
ANSWER_TIMEOUT_SECS = 15.0      # a post's answer (the gateway re-sends a moved post for 5 s)
FAILOVER_LIMIT_SECS = 30.0      # a round gives up waiting for the first ack after this
LIVE_TIMEOUT_SECS = 30.0        # a restarted broker must be live and serving its group within this
WARMUP_SECS = 1.0               # posting before the kill
AFTER_SECS = 0.3                # posting after the first ack
FAILOVER_GROUPS = (6, 24)       # two-member groups: at least, at most (until every broker owns one)
INTAKE_PAIRS = 100              # 100 groups of 2, 200 users, 100 senders
SETTLE_MAX_SECS, SETTLE_IDLE_CPU = 20.0, 0.10
# Every simulated person posts from 127.0.0.1 faster than a person would: lift the per-address caps
# and the per-socket / per-account flood limits (bench/run.py does the same).
LIFTED = {**fanout.ONE_MACHINE, **ramp.UNTHROTTLED}


class BenchError(Exception):
    """Something the benchmark needs did not work; the message says what."""


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------- database

def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def with_search_path(url: str, schema: str) -> str:
    """The URL the services get: libpq's ``options`` puts their tables in ``schema``."""
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"


@contextlib.contextmanager
def fresh_schema(url: str):
    schema = f"chorus_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq(url), autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(libpq(url), autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def live_incarnation(database_url: str, node: str) -> str | None:
    """The incarnation of ``node`` if its lease is ahead (database time), else None."""
    with psycopg.connect(libpq(database_url), connect_timeout=5) as conn:
        row = conn.execute("SELECT incarnation FROM broker_nodes WHERE node = %s AND lease_expires_ms > "
                           "(extract(epoch from clock_timestamp()) * 1000)::bigint", (node,)).fetchone()
    return row[0] if row else None


# ---------------------------------------------------------------- the stack

class Stack:
    """auth, membership, ``brokers`` brokers and one webgate as processes. ``database_url`` None:
    SQLite files in ``workdir`` and a plain (non-cluster) broker, as `chorus up` runs it."""

    def __init__(self, workdir: Path, brokers: int, database_url: str | None):
        if brokers > 1 and database_url is None:
            raise BenchError("more than one broker needs PostgreSQL")
        self.workdir, self.database_url, self.cluster = workdir, database_url, database_url is not None
        self.env = {**service_env(secrets.token_urlsafe(32)), **LIFTED}
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.keys = ensure_keys(workdir / "keys")
        self.routers = [f"tcp://127.0.0.1:{fanout.free_port()}" for _ in range(brokers)]
        self.started: dict[str, Service] = {}

    def _broker_flags(self) -> list[str]:
        return ["--broker-seeds", ",".join(self.routers)] if self.cluster else ["--broker-router", self.routers[0]]

    def start(self) -> None:
        data = ["--data-dir", str(self.workdir / "data")]
        if "auth" not in self.started:
            self._start("auth", ["--listen", "127.0.0.1:0", *data])
        auth = self.started["auth"]
        membership = self._start("membership", [
            "--listen", "127.0.0.1:0", *data, *self._broker_flags(), "--auth", auth.address("grpc"),
            "--keys-dir", str(self.keys / "membership")])
        for k in range(len(self.routers)):
            self._start("broker", [
                "--router", self.routers[k], "--pub", "tcp://127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", *data,
                "--membership", membership.address("grpc"), "--keys-dir", str(self.keys / "broker"),
                *(["--cluster-node", f"b{k + 1}"] if self.cluster else [])], key=f"b{k + 1}")
        pub = [] if self.cluster else ["--broker-pub", self.started["b1"].address("pub")]
        self._start("webgate", [
            "--listen", "127.0.0.1:0", "--auth", auth.address("grpc"), "--membership", membership.address("grpc"),
            *self._broker_flags(), *pub, "--keys-dir", str(self.keys / "gateway")])

    def resize(self, brokers: int) -> None:
        """The same database, accounts and groups with ``brokers`` brokers: everything but auth (whose
        tokens stay valid) is stopped and started again, membership and the webgate with the new seeds."""
        if brokers > 1 and not self.cluster:
            raise BenchError("more than one broker needs PostgreSQL")
        for key in [k for k in self.started if k != "auth"][::-1]:
            self.started.pop(key).stop()
        self.routers = [f"tcp://127.0.0.1:{fanout.free_port()}" for _ in range(brokers)]
        self.start()

    def _start(self, name: str, args: list[str], key: str | None = None) -> Service:
        service = self.started[key or name] = Service(name, args, self.env, self.workdir, label=key)
        service.start()
        return service

    @property
    def url(self) -> str:
        return self.started["webgate"].address("http")

    @property
    def brokers(self) -> list[str]:
        return [k for k in self.started if k.startswith("b")]

    def pid(self, key: str) -> int:
        return self.started[key].process.pid

    def stop(self) -> None:
        for service in reversed(list(self.started.values())):
            if service.process is not None and service.process.poll() is None:
                service.stop()  # SIGTERM to its pid, SIGKILL after the grace period


@contextlib.contextmanager
def running_stack(brokers: int, database_url: str | None):
    """A started Stack in a throw-away directory (and schema, on PostgreSQL); stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="chorus-cluster-bench-") as tmp, contextlib.ExitStack() as exits:
        url = None
        if database_url is not None:
            url = with_search_path(database_url, exits.enter_context(fresh_schema(database_url)))
        stack = Stack(Path(tmp), brokers, url)
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()  # before the schema is dropped (open connections hold locks)


# ---------------------------------------------------------------- people (HTTP API)

class Api:
    def __init__(self, http: aiohttp.ClientSession, url: str):
        self.http, self.url, self.limit = http, url, asyncio.Semaphore(SETUP_CONCURRENCY)

    async def call(self, method: str, path: str, token: str | None = None, json=None, also_ok: int = 0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for attempt in range(4):  # a 503: argon2 missed its deadline on a loaded machine
            async with self.limit, self.http.request(method, self.url + path, json=json, headers=headers) as r:
                body = await r.json() if r.content_length != 0 else None
                if r.status == 503 and attempt < 3:
                    await asyncio.sleep(1 + attempt)
                    continue
                if r.status >= 300 and not (attempt and r.status == also_ok):
                    raise BenchError(f"{method} {path}: {r.status} {body}")
                return body

    async def person(self, name: str) -> dict:
        # 409 after a 503: the first attempt did register (it only missed its deadline)
        await self.call("POST", "/api/register", json={"username": name, "password": PASSWORD}, also_ok=409)
        body = await self.call("POST", "/api/login", json={"username": name, "password": PASSWORD})
        return {"token": body["token"], "id": body["user"]["id"], "groups": []}

    async def people(self, n: int) -> list[dict]:
        run = secrets.token_hex(3)
        return list(await asyncio.gather(*(self.person(f"c{run}u{i}") for i in range(n))))

    async def pair_group(self, creator: dict, joiner: dict) -> str:
        group = (await self.call("POST", "/api/groups", creator["token"], {"name": f"pair {secrets.token_hex(4)}"}))["group"]["id"]
        await self.call("POST", f"/api/groups/{group}/join", joiner["token"])
        creator["groups"].append(group)
        joiner["groups"].append(group)
        return group

    async def history(self, token: str, group: str) -> list[dict]:
        out, after = [], 0
        for _ in range(10_000):
            body = await self.call("GET", f"/api/groups/{group}/messages?after={after}&limit={HISTORY_PAGE}", token)
            out += body["messages"]
            if not body["more"] or not body["messages"]:
                return out
            after = out[-1]["seq"]
        raise BenchError("history paging did not end")


# ---------------------------------------------------------------- failover

class Page:
    """One person's open page: reads every frame; posts report their answer through ``answers``."""

    def __init__(self, http: aiohttp.ClientSession, ws_url: str, person: dict):
        self.http, self.ws_url, self.person = http, ws_url, person
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.answers: dict[str, asyncio.Future] = {}   # ref -> future of the ack / error frame
        self.closes = 0
        self._task: asyncio.Task | None = None

    async def open(self) -> None:
        self.ws = await self.http.ws_connect(self.ws_url, heartbeat=None, max_msg_size=0)
        await self.ws.send_str(orjson.dumps({"op": "auth", "token": self.person["token"]}).decode())
        while True:
            msg = await self.ws.receive(timeout=30)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise BenchError(f"WebSocket closed during auth: {msg}")
            if orjson.loads(msg.data)["op"] == "ready":
                break
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frame = orjson.loads(msg.data)
            if frame["op"] in ("ack", "error"):
                answer = self.answers.pop(str(frame.get("ref")), None)
                if answer is not None and not answer.done():
                    answer.set_result((time.monotonic(), frame))
        self.closes += 1
        for answer in self.answers.values():
            if not answer.done():
                answer.set_result((time.monotonic(), {"op": "error", "code": "connection closed"}))
        self.answers.clear()

    async def post(self, group: str, ref: str, key: str) -> asyncio.Future:
        """Send one post; the future resolves to (answered at, ack or error frame)."""
        answer = self.answers[ref] = asyncio.get_running_loop().create_future()
        if self.ws is None or self.ws.closed:
            await self.reopen()
        await self.ws.send_str(orjson.dumps({"op": "send", "group": group, "ref": ref, "text": f"failover {key}",
                                             "idempotency_key": key}).decode())
        return answer

    async def reopen(self) -> None:
        if self._task is not None:
            await self._task
        await self.open()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)


@dataclass
class Round:
    round: int
    victim: str
    group: str
    failover_secs: float | None = None   # kill -> first ack of a post sent after the kill
    sent: int = 0
    acked: int = 0
    errors: dict = field(default_factory=dict)   # error code -> count (posts the sender was refused)
    rejoin_secs: float = 0.0             # restart -> live and serving its group again


class Poster:
    """Posts into one group from one page, each post at its own time start + n * interval."""

    def __init__(self, page: Page, group: str, prefix: str, acked: list, rnd: Round):
        self.page, self.group, self.prefix, self.acked, self.rnd = page, group, prefix, acked, rnd
        self.watch_from: float | None = None         # sent at or after this: counts for the figure
        self.first_ack: asyncio.Future = asyncio.get_running_loop().create_future()
        self.answers: list[asyncio.Task] = []
        self._n = itertools.count()

    async def one(self) -> None:
        n = next(self._n)
        key = f"{self.prefix}-{n}"
        sent_at = time.monotonic()
        self.rnd.sent += 1
        answer = await self.page.post(self.group, f"{self.prefix}-{n}", key)
        self.answers.append(asyncio.create_task(self._answered(answer, sent_at, f"failover {key}")))

    async def _answered(self, answer: asyncio.Future, sent_at: float, text: str) -> None:
        try:
            at, frame = await asyncio.wait_for(answer, ANSWER_TIMEOUT_SECS)
        except TimeoutError:
            self.rnd.errors["no answer"] = self.rnd.errors.get("no answer", 0) + 1
            return
        if frame["op"] == "ack":
            self.rnd.acked += 1
            self.acked.append((frame["group"], frame["seq"], text))
            if self.watch_from is not None and sent_at >= self.watch_from and not self.first_ack.done():
                self.first_ack.set_result(at)
        else:
            code = frame.get("code", "?")
            self.rnd.errors[code] = self.rnd.errors.get(code, 0) + 1

    async def loop(self, interval: float, stop: asyncio.Event, limit: int = 100_000) -> None:
        start = time.monotonic()
        for n in range(limit):
            if stop.is_set():
                return
            await self.one()
            await asyncio.sleep(max(0.0, start + (n + 1) * interval - time.monotonic()))

    async def settle(self) -> None:
        await asyncio.gather(*self.answers)


async def failover(args) -> dict:
    log(f"failover: 3 brokers on PostgreSQL, {args.kills} kills; load {loadavg()}")
    result = {"load_before": loadavg(), "rounds": []}
    with running_stack(3, args.database_url) as stack:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            api = Api(http, stack.url)
            people = await api.people(2 * FAILOVER_GROUPS[0])
            groups: dict[str, tuple[dict, dict]] = {}   # group -> (its two members)
            for i in range(FAILOVER_GROUPS[1]):
                pair = (people[(2 * i) % len(people)], people[(2 * i + 1) % len(people)])
                groups[await api.pair_group(*pair)] = pair
                owners = collections.Counter(rendezvous_owner(g, stack.brokers) for g in groups)
                if i + 1 >= FAILOVER_GROUPS[0] and all(owners[b] for b in stack.brokers):
                    break
            result["groups_per_broker"] = dict(sorted(owners.items()))
            ws_url = stack.url.replace("http", "ws", 1) + "/ws"
            pages = {p["id"]: Page(http, ws_url, p) for p in people}
            await asyncio.gather(*(page.open() for page in pages.values()))
            acked: list[tuple[str, int, str]] = []
            run_id = secrets.token_hex(3)
            for k in range(args.kills):
                rnd = await failover_round(k, stack, api, pages, groups, acked, run_id, args)
                result["rounds"].append(asdict(rnd))
                log(f"round {k + 1}: kill -9 {rnd.victim} ({rnd.group[:8]}): "
                    f"{rnd.failover_secs if rnd.failover_secs is None else round(rnd.failover_secs, 3)} s, "
                    f"errors {rnd.errors}, back in {rnd.rejoin_secs:.1f} s")
            result["check"] = await check_history(api, groups, acked)
            result["page_reconnects"] = sum(p.closes for p in pages.values())
            for page in pages.values():
                await page.close()
    result["load_after"] = loadavg()
    return result


async def failover_round(k: int, stack: Stack, api: Api, pages: dict, groups: dict, acked: list,
                         run_id: str, args) -> Round:
    live = stack.brokers
    owned = {b: [g for g in groups if rendezvous_owner(g, live) == b] for b in live}
    candidates = [b for b in live if owned[b]]
    victim = candidates[k % len(candidates)]
    group = owned[victim][(k // len(candidates)) % len(owned[victim])]
    rnd = Round(k + 1, victim, group)
    poster = Poster(pages[groups[group][0]["id"]], group, f"{run_id}-{k}", acked, rnd)
    stop = asyncio.Event()
    posting = asyncio.create_task(poster.loop(args.post_interval_ms / 1000, stop))
    try:
        await asyncio.sleep(WARMUP_SECS)
        service = stack.started[victim]
        old_incarnation = live_incarnation(stack.database_url, victim)
        t0 = time.monotonic()
        poster.watch_from = t0
        os.kill(service.process.pid, signal.SIGKILL)
        try:
            first = await asyncio.wait_for(asyncio.shield(poster.first_ack), FAILOVER_LIMIT_SECS)
            rnd.failover_secs = first - t0
        except TimeoutError:
            rnd.errors["no ack within limit"] = 1
        await asyncio.sleep(AFTER_SECS)
    finally:
        stop.set()
        await posting
    await poster.settle()
    await asyncio.to_thread(service.process.wait, 10)
    restarted = time.monotonic()
    await asyncio.to_thread(service.start)  # the same arguments (its ports were pinned at first start)
    await until_live(stack, victim, old_incarnation, poster)
    rnd.rejoin_secs = time.monotonic() - restarted
    return rnd


async def until_live(stack: Stack, node: str, old_incarnation: str | None, poster: Poster) -> None:
    """The restarted ``node`` holds a lease under a new incarnation, and a post to the group it
    wins again is acknowledged (posts keep their own figures out of the round's)."""
    deadline = time.monotonic() + LIVE_TIMEOUT_SECS
    while (incarnation := await asyncio.to_thread(live_incarnation, stack.database_url, node)) in (None,
                                                                                                  old_incarnation):
        if time.monotonic() > deadline:
            raise BenchError(f"{node} was not live again within {LIVE_TIMEOUT_SECS:.0f} s")
        await asyncio.sleep(0.05)
    poster.watch_from = time.monotonic()
    poster.first_ack = asyncio.get_running_loop().create_future()
    while not poster.first_ack.done():
        if time.monotonic() > deadline:
            raise BenchError(f"no post to {poster.group} acknowledged after {node} came back")
        await poster.one()
        await asyncio.sleep(0.1)
    await poster.settle()


async def check_history(api: Api, groups: dict, acked: list) -> dict:
    """Every acknowledged post is in history at its acked seq, once; seqs are 1..n per group."""
    stored: dict[str, list[dict]] = {g: await api.history(members[0]["token"], g) for g, members in groups.items()}
    at = {(g, m["seq"]): m["text"] for g, messages in stored.items() for m in messages}
    texts = collections.Counter((g, m["text"]) for g, messages in stored.items() for m in messages)
    return {
        "acked": len(acked),
        "stored": sum(len(m) for m in stored.values()),
        "missing": sum(1 for g, seq, text in acked if at.get((g, seq)) != text),
        "stored_twice": sum(1 for g, _seq, text in acked if texts[(g, text)] > 1),
        "groups_with_gaps": sum(1 for messages in stored.values()
                                if [m["seq"] for m in messages] != list(range(1, len(messages) + 1))),
    }


# ---------------------------------------------------------------- intake

@dataclass
class Config:
    name: str
    brokers: int
    postgres: bool


def intake_configs(args) -> list[Config]:
    out = [Config("1 broker, SQLite", 1, False)] if "sqlite" in args.intake_stores else []
    return out + [Config(f"{n} broker{'s' if n > 1 else ''}, PostgreSQL", n, True)
                  for n in args.intake_brokers]


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (other users' work on it included)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() in ("postgres", "postmaster"):
                    out.append(int(entry))
    return out


def cpu_of(pids: list[int]) -> dict[int, float]:
    return {pid: ramp.cpu_secs(pid) for pid in pids}


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings; processes that appeared meanwhile count from 0."""
    return sum(after.get(pid, 0.0) - before.get(pid, 0.0) for pid in after if after.get(pid, 0.0) >= before.get(pid, 0.0))


def settle(pids: list[int]) -> None:
    """Wait (bounded) until the servers are idle, so one step's backlog stays out of the next."""
    deadline = time.monotonic() + SETTLE_MAX_SECS
    before = sum(ramp.cpu_secs(p) for p in pids)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = sum(ramp.cpu_secs(p) for p in pids)
        if now - before < SETTLE_IDLE_CPU * 0.5:
            return
        before = now


async def intake_people(url: str, pairs: int) -> list[dict]:
    """2 * pairs people in ``pairs`` two-member groups, ordered so that person i < pairs is the
    creator of group i (a sender) and person pairs + i its other member."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        api = Api(http, url)
        people = await api.people(2 * pairs)
        await asyncio.gather(*(api.pair_group(people[i], people[pairs + i]) for i in range(pairs)))
    return [{"id": p["id"], "token": p["token"], "groups": p["groups"]} for p in people]


def intake(args) -> list[dict]:
    """The SQLite configuration on a stack of its own; the PostgreSQL ones on one stack, resized
    between them, so the 200 people register (argon2) once per store."""
    configs = intake_configs(args)
    out = []
    for postgres in (False, True):
        mine = [c for c in configs if c.postgres == postgres]
        if not mine:
            continue
        with running_stack(mine[0].brokers, args.database_url if postgres else None) as stack:
            t0 = time.monotonic()
            people = fanout.event_loop_runner()(intake_people(stack.url, args.pairs))
            setup_secs = time.monotonic() - t0
            log(f"intake: {len(people)} people in {setup_secs:.0f} s")
            for config in mine:
                if len(stack.brokers) != config.brokers:
                    stack.resize(config.brokers)
                out.append({**intake_config(config, stack, people, args), "setup_secs": setup_secs})
    return out


def intake_config(config: Config, stack: Stack, people: list[dict], args) -> dict:
    log(f"intake: {config.name}; load {loadavg()}")
    out = {"config": asdict(config), "load_before": loadavg(), "steps": []}
    with contextlib.ExitStack() as exits:
        gen = ramp.Generator({"kind": "chorus", "url": stack.url.replace("http", "ws", 1) + "/ws", "users": people,
                              "senders": args.pairs}, None, exits)
        connected = gen.command(120, cmd="connect", sockets=len(people))
        if connected["sockets"] != len(people):
            raise BenchError(f"the generator opened {connected['sockets']} of {len(people)} sockets: {connected}")
        brokers = [stack.pid(b) for b in stack.brokers]
        others = {"webgate": [stack.pid("webgate")], "auth+membership": [stack.pid("auth"), stack.pid("membership")]}
        saturated = 0
        for step, rate in enumerate(args.rates):
            settle(brokers + others["webgate"])
            pg = postgres_pids() if config.postgres else []
            before = {"brokers": cpu_of(brokers), **{k: cpu_of(v) for k, v in others.items()},
                      "postgres": cpu_of(pg), "generator": cpu_of([gen.process.pid])}
            load = os.getloadavg()[0]
            res = gen.command(args.duration + args.drain + 30, cmd="run", step=step, rate=rate,
                              duration=args.duration, drain=args.drain)
            after = {"brokers": cpu_of(brokers), **{k: cpu_of(v) for k, v in others.items()},
                     "postgres": cpu_of(postgres_pids() if config.postgres else []),
                     "generator": cpu_of([gen.process.pid])}
            cpu = {k: spent(before[k], after[k]) for k in before}
            row = {"rate": rate, "sent": res["sent"], "acked": res["acked"], "errors": res["errors"],
                   "error_codes": res["error_codes"], "acked_per_sec": res["acked"] / max(res["ack_secs"], 1e-9),
                   "ack_p50_ms": res["ack"]["p50"], "ack_p99_ms": res["ack"]["p99"], "send_secs": res["send_secs"],
                   "cpu": cpu, "per_broker_cpu": {b: after["brokers"][stack.pid(b)] - before["brokers"][stack.pid(b)]
                                                  for b in stack.brokers},
                   "loadavg_1m_before": load}
            out["steps"].append(row)
            log(f"  R={rate}: acked {row['acked']}/{row['sent']} = {row['acked_per_sec']:.0f}/s, ack p50/p99 "
                f"{row['ack_p50_ms']}/{row['ack_p99_ms']} ms, errors {row['errors']}, broker CPU "
                f"{cpu['brokers']:.1f} s, generator {cpu['generator']:.1f} s")
            saturated = saturated + 1 if (row["acked_per_sec"] < 0.9 * rate or row["acked"] < 0.99 * row["sent"]) else 0
            if saturated >= 2:
                break
    out["load_after"] = loadavg()
    return out


# ---------------------------------------------------------------- report

def fmt(value, spec=".0f", none="–") -> str:
    return none if value is None else format(value, spec)


def failover_report(result: dict, lines: list[str]) -> None:
    rounds = result["rounds"]
    samples = [r["failover_secs"] for r in rounds if r["failover_secs"] is not None]
    check = result["check"]
    errors = collections.Counter()
    for r in rounds:
        errors.update(r["errors"])
    lines += ["## Failover: kill -9 of a broker -> first acknowledged post to one of its groups", "",
              f"Three brokers (default lease {result.get('lease', '5 s')}, renewal 0.5 s), one webgate, "
              f"groups per broker {result['groups_per_broker']}; a post every {result['interval_ms']} ms with an "
              f"idempotency key. Machine load (1/5/15 min) before {result['load_before']}, "
              f"after {result['load_after']}.", "",
              "| kills | p50 (s) | max (s) | min (s) | rounds without an ack in "
              f"{FAILOVER_LIMIT_SECS:.0f} s | posts refused (by code) | restart -> live again, p50 (s) |",
              "|---|---|---|---|---|---|---|",
              f"| {len(rounds)} | {fmt(statistics.median(samples) if samples else None, '.3f')} "
              f"| {fmt(max(samples) if samples else None, '.3f')} | {fmt(min(samples) if samples else None, '.3f')} "
              f"| {len(rounds) - len(samples)} | {', '.join(f'{c} ×{n}' for c, n in errors.most_common()) or '0'} "
              f"| {statistics.median(r['rejoin_secs'] for r in rounds):.1f} |", "",
              "Samples (s), in order: " + ", ".join(fmt(r["failover_secs"], ".3f") for r in rounds), "",
              "Victims: " + ", ".join(f"{r['victim']}" for r in rounds), "",
              f"History check: {check['acked']} posts acknowledged, {check['stored']} stored; acknowledged but "
              f"missing from history: **{check['missing']}**; stored twice: **{check['stored_twice']}**; groups "
              f"whose seqs are not 1..n: **{check['groups_with_gaps']}**. Page WebSockets closed meanwhile: "
              f"{result['page_reconnects']}.", ""]


def intake_report(results: list[dict], args, lines: list[str]) -> None:
    lines += ["## Intake: posts per second with two-member groups", "",
              f"{args.pairs} groups of 2, {2 * args.pairs} WebSockets, {args.pairs} senders (each post at its "
              f"own scheduled time), Node generator (bench/node/gen.js); {args.duration:g} s per step. acked/s = acks "
              "/ (last ack − first send). CPU = utime+stime from /proc over the step, in ms per acked post. "
              "PostgreSQL's CPU is every postgres process on the machine (other users' included).", ""]
    summary = []
    for res in results:
        c = res["config"]
        lines += [f"### {c['name']}", "",
                  f"Set-up {res['setup_secs']:.0f} s; load before {res['load_before']}, after {res['load_after']}.", "",
                  "| R (posts/s) | sent | acked | acked/s | ack p50 (ms) | ack p99 (ms) | errors | broker CPU ms/post "
                  "| per broker CPU (s) | webgate ms/post | PostgreSQL ms/post | generator CPU (s) / step (s) | load 1m |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in res["steps"]:
            per = lambda k: fmt(1000 * s["cpu"][k] / s["acked"] if s["acked"] else None, ".3f")  # noqa: E731
            codes = ", ".join(f"{k} ×{v}" for k, v in s["error_codes"].items())
            lines.append(
                f"| {s['rate']} | {s['sent']} | {s['acked']} | {s['acked_per_sec']:.0f} | {fmt(s['ack_p50_ms'], '.1f')} "
                f"| {fmt(s['ack_p99_ms'], '.1f')} | {s['errors']}{f' ({codes})' if codes else ''} | {per('brokers')} "
                f"| {' / '.join(f'{v:.1f}' for v in s['per_broker_cpu'].values())} | {per('webgate')} "
                f"| {per('postgres') if c['postgres'] else '–'} | {s['cpu']['generator']:.1f} / {s['send_secs']:.1f} "
                f"| {s['loadavg_1m_before']:.2f} |")
        lines.append("")
        clean = [s for s in res["steps"] if s["acked"] >= 0.99 * s["sent"] and s["errors"] == 0]
        best = max(res["steps"], key=lambda s: s["acked_per_sec"])
        basis = max(clean, key=lambda s: s["acked_per_sec"]) if clean else best
        summary.append((c, best, basis))
    base = summary[0][1]["acked_per_sec"] if summary else 1
    lines += ["### Summary", "",
              "| configuration | max acked/s | × first row | broker CPU ms/post (at the highest clean step) "
              "| webgate ms/post | PostgreSQL ms/post | one broker per core: posts/s per broker (1 / CPU per post) |",
              "|---|---|---|---|---|---|---|"]
    for c, best, basis in summary:
        per = {k: basis["cpu"][k] / basis["acked"] if basis["acked"] else None for k in basis["cpu"]}
        lines.append(f"| {c['name']} | {best['acked_per_sec']:.0f} | {best['acked_per_sec'] / base:.2f} "
                     f"| {fmt(1000 * per['brokers'], '.3f')} | {fmt(1000 * per['webgate'], '.3f')} "
                     f"| {fmt(1000 * per['postgres'], '.3f') if c['postgres'] else '–'} "
                     f"| {fmt(1 / per['brokers'] if per['brokers'] else None)} |")
    lines.append("")
    pg = [(c, basis) for c, _best, basis in summary if c["postgres"] and basis["acked"]]
    if pg:
        cb = statistics.median(b["cpu"]["brokers"] / b["acked"] for _c, b in pg)
        cw = statistics.median(b["cpu"]["webgate"] / b["acked"] for _c, b in pg)
        cp = statistics.median(b["cpu"]["postgres"] / b["acked"] for _c, b in pg)
        lines += ["### On paper: N brokers on N cores", "",
                  f"Median over the PostgreSQL configurations: a broker spends {1000 * cb:.3f} ms of CPU per post, "
                  f"the webgate {1000 * cw:.3f} ms, PostgreSQL {1000 * cp:.3f} ms. Each group has one owner and "
                  "brokers share no work per post, so N brokers, each with a core of its own, take in about "
                  f"N × {1 / cb:,.0f} posts/s, as long as the gateways ({1 / cw:,.0f} posts/s per gateway core) "
                  f"and PostgreSQL ({1 / cp:,.0f} posts/s per core of its) are given cores in proportion: "
                  f"a whole post costs {1000 * (cb + cw + cp):.3f} ms of CPU, so {1 / (cb + cw + cp):,.0f} "
                  "posts/s per core of the whole system. "
                  "On this 2-core machine every configuration shares the same two cores, so adding brokers "
                  "cannot raise the total; what must hold is that CPU per post does not grow with N.", ""]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="failover,intake", help="comma-separated: failover, intake")
    p.add_argument("--database-url", default=os.environ.get("CHORUS_TEST_POSTGRES_URL", DEFAULT_DATABASE_URL),
                   help="PostgreSQL to run the clusters on (a fresh schema is made and dropped)")
    p.add_argument("--kills", type=int, default=20, help="failover rounds")
    p.add_argument("--post-interval-ms", type=float, default=20.0, help="failover: one post every this often")
    p.add_argument("--rates", default="200,400,800,1200,1600,2400,3200",
                   help="intake: the ramp's rates, posts/s (it stops after two saturated steps in a row)")
    p.add_argument("--duration", type=float, default=5.0, help="intake: seconds of sending per step")
    p.add_argument("--drain", type=float, default=5.0, help="intake: seconds to wait for late acks per step")
    p.add_argument("--intake-brokers", default="1,2,3", help="intake: broker counts on PostgreSQL")
    p.add_argument("--intake-stores", default="sqlite", help="intake: 'sqlite' adds one broker on SQLite first; '' not")
    p.add_argument("--pairs", type=int, default=INTAKE_PAIRS,
                   help="intake: two-member groups; each has one sender on its own WebSocket")
    p.add_argument("--output", help="also write the markdown here")
    p.add_argument("--json", help="also write every raw figure as JSON here")
    args = p.parse_args(argv)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    if not parts or set(parts) - {"failover", "intake"}:
        p.error("--parts takes failover and/or intake")
    if not 1 <= args.kills <= 200 or not 5 <= args.post_interval_ms <= 1000:
        p.error("--kills must be in [1, 200] and --post-interval-ms in [5, 1000]")
    try:
        args.rates = [int(r) for r in args.rates.split(",")]
        args.intake_brokers = [int(n) for n in args.intake_brokers.split(",") if n.strip()]
    except ValueError:
        p.error("--rates and --intake-brokers are comma-separated integers")
    if not all(0 < r <= 50_000 for r in args.rates) or not all(1 <= n <= 3 for n in args.intake_brokers):
        p.error("--rates must be in (0, 50000] and --intake-brokers in [1, 3]")
    if not 1 <= args.pairs <= 1000:
        p.error("--pairs must be in [1, 1000]")
    if not 0 < args.duration <= 120 or not 0 <= args.drain <= 60:
        p.error("--duration must be in (0, 120] and --drain in [0, 60]")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally blocks stop what was started
    ramp.fd_limit()
    lines = ["# Chorus cluster benchmark (bench/cluster.py)", "",
             f"Command: `.venv/bin/python bench/cluster.py {' '.join(argv if argv is not None else sys.argv[1:])}`; "
             f"{os.cpu_count()} CPUs; started {time.strftime('%Y-%m-%d %H:%M')}, load {loadavg()}.", ""]
    raw: dict = {}
    try:
        if "failover" in parts:
            raw["failover"] = fanout.event_loop_runner()(failover(args))
            raw["failover"]["interval_ms"] = args.post_interval_ms
            failover_report(raw["failover"], lines)
            print("\n".join(lines), file=sys.stderr, flush=True)  # in case intake fails
        if "intake" in parts:
            ramp.ensure_node()
            raw["intake"] = intake(args)
            intake_report(raw["intake"], args, lines)
    except (BenchError, ramp.Failed, RuntimeError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        lines.append(f"Finished {time.strftime('%H:%M')}, load {loadavg()}.")
        if args.json:
            Path(args.json).write_text(json.dumps(raw, indent=1))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
