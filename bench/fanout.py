"""First fan-out benchmark: U WebSocket clients in G groups, S senders at a fixed total rate.

    .venv/bin/python bench/fanout.py --start                 # starts its own `chorus up`
    .venv/bin/python bench/fanout.py --url http://127.0.0.1:8080   # against a running stack

Every user registers and logs in through the real HTTP API and opens one
WebSocket; user i joins K groups, (i*K + j) mod G, so each group has
U*K/G members. Senders post at R msgs/s in total for D seconds; each text
carries its send time (CLOCK_MONOTONIC, same process as the receivers).
Prints a markdown table: expected and actual deliveries, loss, deliveries/s,
latency p50/p90/p99/max, and the generator's own CPU seconds (so a saturated
generator is visible).
Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import aiohttp
import orjson

MARK = "bench:"
SETUP_CONCURRENCY = 8  # argon2 hashing on the auth side is the bottleneck of setup
DRAIN_SECS = 3.0
START_TIMEOUT_SECS = 60


class BenchError(Exception):
    """The stack refused something during setup; the message says what."""


@dataclass
class Stats:
    expected: int = 0
    delivered: int = 0
    acked: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8080", help="webgate base URL")
    p.add_argument("--start", action="store_true", help="start a private `chorus up` on free ports")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--groups", type=int, default=10)
    p.add_argument("--groups-per-user", type=int, default=3)
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--rate", type=float, default=100.0, help="messages per second, all senders together")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    p.add_argument("--pad", type=int, default=0, help="bytes of padding in every text (fills buffers faster)")
    p.add_argument("--stalled", type=int, default=0,
                   help="extra sessions (of the last users) that log in and then never read: slow consumers")
    args = p.parse_args(argv)
    for name in ("users", "groups", "groups_per_user", "senders"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.groups_per_user > args.groups:
        p.error("--groups-per-user cannot exceed --groups")
    if args.senders > args.users:
        p.error("--senders cannot exceed --users")
    if not (0 < args.rate <= 100_000) or not (0 < args.duration <= 3600):
        p.error("--rate must be in (0, 100000] and --duration in (0, 3600]")
    if not (0 <= args.pad <= 60_000) or not (0 <= args.stalled <= args.users):
        p.error("--pad must be in [0, 60000] and --stalled in [0, --users]")
    return args


async def setup(http: aiohttp.ClientSession, url: str, args) -> tuple[list[dict], list[str]]:
    run = secrets.token_hex(3)
    limit = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def call(method, path, token=None, json=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with limit, http.request(method, url + path, json=json, headers=headers) as r:
            body = await r.json() if r.content_length != 0 else None
            if r.status >= 300:
                raise BenchError(f"{method} {path} failed: {r.status} {body}")
            return body

    async def user(i):
        name = f"b{run}u{i}"
        await call("POST", "/api/register", json={"username": name, "password": "benchmark-pw"})
        body = await call("POST", "/api/login", json={"username": name, "password": "benchmark-pw"})
        return {"token": body["token"], "id": body["user"]["id"], "index": i}

    users = await asyncio.gather(*(user(i) for i in range(args.users)))
    groups = [(await call("POST", "/api/groups", users[0]["token"], {"name": f"bench {run} {g}"}))["group"]["id"]
              for g in range(args.groups)]
    memberships = []
    for u in users:
        u["groups"] = [groups[(u["index"] * args.groups_per_user + j) % args.groups]
                       for j in range(args.groups_per_user)]
        memberships += [(u, g) for g in u["groups"] if not (u is users[0])]
    await asyncio.gather(*(call("POST", f"/api/groups/{g}/join", u["token"]) for u, g in memberships))
    if users[0]["groups"] != groups:  # the owner joined every group by creating it: leave the others
        await asyncio.gather(*(call("POST", f"/api/groups/{g}/leave", users[0]["token"])
                               for g in groups if g not in users[0]["groups"]))
    return users, groups


async def connect(http, url, user) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(url.replace("http", "ws", 1) + "/ws", max_msg_size=0)
    await ws.send_str(orjson.dumps({"op": "auth", "token": user["token"]}).decode())
    while True:
        msg = await ws.receive(timeout=30)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise BenchError(f"WebSocket closed during auth: {msg}")
        if orjson.loads(msg.data)["op"] == "ready":
            return ws


async def frames(ws, stop: asyncio.Event):
    """Every frame ``ws`` receives, parsed, until ``stop`` is set or the socket is closed."""
    loads = orjson.loads
    while not stop.is_set():
        try:
            msg = await ws.receive(timeout=0.5)
        except TimeoutError:
            continue
        if msg.type != aiohttp.WSMsgType.TEXT:
            return
        yield loads(msg.data)


async def receive(ws, stats: Stats, stop: asyncio.Event) -> None:
    now = time.monotonic_ns
    async for frame in frames(ws, stop):
        op = frame["op"]
        if op == "message" and frame["text"].startswith(MARK):
            stats.delivered += 1
            stats.latencies_ms.append((now() - int(frame["text"][len(MARK):].split(" ", 1)[0])) / 1e6)
        elif op == "ack":
            stats.acked += 1
        elif op == "error":
            stats.errors += 1


async def send(ws, user, members: dict[str, int], stats: Stats, rate: float, duration: float,
               pad: str = "") -> None:
    interval = 1.0 / rate
    start = time.monotonic()
    for n in range(int(rate * duration)):
        delay = start + n * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        group = user["groups"][n % len(user["groups"])]
        stats.expected += members[group]
        await ws.send_str(orjson.dumps({"op": "send", "group": group, "ref": str(n),
                                        "text": f"{MARK}{time.monotonic_ns()}{pad}"}).decode())


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def bench(args, url: str) -> None:
    # limit=0: one connection per simulated user (aiohttp pools 100 by default)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        t0 = time.monotonic()
        users, _ = await setup(http, url, args)
        sockets = await asyncio.gather(*(connect(http, url, u) for u in users))
        members: dict[str, int] = {}
        for u in users:
            for g in u["groups"]:
                members[g] = members.get(g, 0) + 1
        print(f"setup: {len(users)} users, {len(members)} groups, {len(sockets)} sockets "
              f"in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        stalled = [await asyncio.to_thread(open_stalled, url, u["token"]) for u in users[-args.stalled:]] \
            if args.stalled else []
        stats, stop = Stats(), asyncio.Event()
        receivers = [asyncio.create_task(receive(ws, stats, stop)) for ws in sockets]
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.monotonic()
        pad = " " + "x" * args.pad if args.pad else ""
        await asyncio.gather(*(send(sockets[i], users[i], members, stats, args.rate / args.senders,
                                    args.duration, pad) for i in range(args.senders)))
        sent_secs = time.monotonic() - start
        deadline = time.monotonic() + DRAIN_SECS
        while stats.delivered < stats.expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - start
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        stop.set()
        await asyncio.gather(*receivers)
        for ws in sockets:
            await ws.close()
        endings = [await asyncio.to_thread(how_it_ended, conn) for conn in stalled]
    report(args, stats, sent_secs, elapsed, (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
           endings)


def open_stalled(url: str, token: str):
    """A session that logs in, then stops reading: a tiny receive buffer, and the client's
    queue of one frame stops its reader thread, so the gateway's buffer for it grows."""
    from websockets.sync.client import connect as ws_connect

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = url.split("://", 1)[1].split(":")
    sock.connect((host, int(port)))
    conn = ws_connect(url.replace("http", "ws", 1) + "/ws", sock=sock, max_queue=1,
                      max_size=None).__enter__()  # closed in how_it_ended
    conn.send(orjson.dumps({"op": "auth", "token": token}).decode())
    while orjson.loads(conn.recv(timeout=30))["op"] != "ready":
        pass
    return conn


def how_it_ended(conn) -> str:
    """After the run, read what the stalled session was sent: a close code, a reset, or still open."""
    from websockets.exceptions import ConnectionClosed

    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            conn.recv(timeout=5)
    except ConnectionClosed as closed:
        return f"closed {closed.rcvd.code} {closed.rcvd.reason}" if closed.rcvd else "reset"
    except TimeoutError:
        pass
    conn.close()
    return "still open"


def report(args, stats: Stats, sent_secs: float, elapsed: float, generator_cpu: float,
           endings: list[str]) -> None:
    lat = sorted(stats.latencies_ms)
    loss = stats.expected - stats.delivered
    rows = [
        ("users / groups / groups per user / senders",
         f"{args.users} / {args.groups} / {args.groups_per_user} / {args.senders}"),
        ("target rate (msgs/s) x duration (s)", f"{args.rate:g} x {args.duration:g}"),
        ("messages acked / errors", f"{stats.acked} / {stats.errors}"),
        ("deliveries expected / received", f"{stats.expected} / {stats.delivered}"),
        ("loss", f"{loss} ({100 * loss / max(1, stats.expected):.2f}%)"),
        ("deliveries/s", f"{stats.delivered / max(sent_secs, 1e-9):,.0f}"),
        ("latency p50 / p90 / p99 / max (ms)",
         " / ".join(f"{percentile(lat, q):.1f}" for q in (0.5, 0.9, 0.99)) + f" / {lat[-1] if lat else float('nan'):.1f}"),
        ("generator CPU (s) over run (s)", f"{generator_cpu:.1f} / {elapsed:.1f}"),
    ]
    if endings:
        counted = {e: endings.count(e) for e in sorted(set(endings))}
        rows.append(("stalled sessions: how they ended", ", ".join(f"{e} ×{n}" for e, n in counted.items())))
    print("| metric | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Every simulated person connects from this one machine (127.0.0.1): the gateway's per-address
# caps, meant for real clients each on its own address, would refuse most of them. The started
# stack lifts those; the per-account limits stay.
ONE_MACHINE = {"CHORUS_MAX_CONNECTIONS_PER_ADDRESS": "1000000", "CHORUS_MAX_WEBSOCKETS_PER_ADDRESS": "1000000",
               "CHORUS_REGISTRATIONS_PER_IP": "1000000"}  # every benchmark user registers from here


def start_stack(data_dir: str, extra_env: dict[str, str] | None = None, *,
                one_machine: bool = True) -> tuple[subprocess.Popen, str]:
    """A private `chorus up` on free ports with ``extra_env``; ``one_machine`` lifts the
    per-address caps (ONE_MACHINE). The process and its base URL."""
    ports = {name: free_port() for name in ("http", "auth", "membership", "broker-router", "broker-pub",
                                            "broker-grpc")}
    command = [sys.executable, "-m", "chorus", "up", "--data-dir", data_dir,
               *(a for name, port in ports.items() for a in (f"--{name}-port", str(port)))]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_") and k != "DATABASE_URL"}
    env.update(ONE_MACHINE if one_machine else {})
    env.update(extra_env or {})
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    deadline = time.monotonic() + START_TIMEOUT_SECS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "Chorus is running" in line:
            return process, f"http://127.0.0.1:{ports['http']}"
        if not line and process.poll() is not None:
            break
    process.kill()
    raise SystemExit("chorus up did not start")


@contextlib.contextmanager
def private_stack(extra_env: dict[str, str] | None = None, *, one_machine: bool = True):
    """A private `chorus up` (start_stack) in a throw-away data directory: its base URL;
    stopped (SIGINT) afterwards."""
    with tempfile.TemporaryDirectory(prefix="chorus-bench-") as data_dir:
        process, url = start_stack(data_dir, extra_env, one_machine=one_machine)
        try:
            yield url
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)


def event_loop_runner():
    """uvloop's run when installed (the webgate uses it too), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def main(argv=None) -> int:
    args = parse_args(argv)
    runner = event_loop_runner()
    try:
        if not args.start:
            runner(bench(args, args.url.rstrip("/")))
            return 0
        with private_stack() as url:
            runner(bench(args, url))
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
