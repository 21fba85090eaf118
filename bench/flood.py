"""One account floods through many sockets while a bystander pair chats in their own group:
what the flood gets through, and what the bystanders feel.

    .venv/bin/python bench/flood.py --start            # every run, each on a fresh `chorus up`
    .venv/bin/python bench/flood.py --url http://127.0.0.1:8080 --runs flood   # one, on a running stack

The flooder (one account, from 127.0.0.2, in a process of its own so that its work does not
delay the bystanders' clock) opens ``--sockets`` WebSockets, then posts through every one it
got into its own group at ``--flood-rate`` posts a second in total for ``--duration`` seconds,
reading everything it is sent (acks, errors, and its own messages fanned out to all its
sockets). Meanwhile two people from 127.0.0.3 take turns posting ``--chat-rate`` messages a
second to each other; each message's latency is from its send to its arrival on the other's
page (one clock: same process). The runs (``--start``):

- ``quiet``: no flood, the bystanders alone (their usual latency);
- ``flood``: the default limits;
- ``no-caps``: sessions per account and the per-address caps lifted: the account's post
  rate alone holds the flood;
- ``unlimited``: the per-account post rate lifted too: what an account could do before
  (issue 10), the per-socket limit aside;
- ``half-open``: instead of WebSockets, the flooder keeps ``--half-open`` connections open
  that each send half a request head and wait, reopening each one as soon as it ends
  (answered, cut at the header deadline, or reset).

Every run also times a newcomer registering and logging in (two argon2 hashes) while the flood is on.

Prints a markdown table. Every loop is bounded in count and time; all traffic is loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import multiprocessing
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field

import aiohttp
import orjson

import fanout

FLOODER_ADDRESS, BYSTANDER_ADDRESS = "127.0.0.2", "127.0.0.3"
OPEN_CONCURRENCY = 50
OPEN_BUDGET_SECS = 15.0  # the flooder opens its sockets within this, then posts
DRAIN_SECS = 3.0
PASSWORD = "benchmark-pw"
LIFTED = "1000000"
RUNS = {
    "quiet": {},
    "flood": {},
    "no-caps": {"CHORUS_MAX_SESSIONS_PER_ACCOUNT": LIFTED, "CHORUS_MAX_WEBSOCKETS_PER_ADDRESS": LIFTED,
                "CHORUS_MAX_CONNECTIONS_PER_ADDRESS": LIFTED},
    "unlimited": {"CHORUS_MAX_SESSIONS_PER_ACCOUNT": LIFTED, "CHORUS_MAX_WEBSOCKETS_PER_ADDRESS": LIFTED,
                  "CHORUS_MAX_CONNECTIONS_PER_ADDRESS": LIFTED,
                  "CHORUS_ACCOUNT_POSTS_PER_SEC": LIFTED, "CHORUS_ACCOUNT_POSTS_BURST": LIFTED},
    "half-open": {},
}
DROPPED_WITHIN_SECS = 1.0  # a connection ended unanswered this soon was dropped, not cut at a deadline
HALF_OPEN_HEAD = b"GET / HTTP/1.1\r\nHost: chorus\r\nUser-Agent: half"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8080", help="webgate base URL")
    p.add_argument("--start", action="store_true", help="start a private `chorus up` for each run")
    p.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    p.add_argument("--sockets", type=int, default=500, help="WebSockets the flooding account tries to open")
    p.add_argument("--flood-rate", type=float, default=2000.0, help="posts a second the flooder tries, in total")
    p.add_argument("--chat-rate", type=float, default=2.0, help="bystander messages a second")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of flooding and chatting")
    p.add_argument("--half-open", type=int, default=1100,
                   help="connections the half-open run keeps open from one address")
    args = p.parse_args(argv)
    args.runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if unknown := [r for r in args.runs if r not in RUNS]:
        p.error(f"unknown runs {unknown}; choose from {', '.join(RUNS)}")
    if not 1 <= args.sockets <= 5000 or not 0 < args.flood_rate <= 100_000:
        p.error("--sockets must be in [1, 5000] and --flood-rate in (0, 100000]")
    if not 0 < args.chat_rate <= 50 or not 0 < args.duration <= 600:
        p.error("--chat-rate must be in (0, 50] and --duration in (0, 600]")
    if not 1 <= args.half_open <= 10_000:
        p.error("--half-open must be in [1, 10000]")
    return args


@dataclass
class FloodResult:
    opened: int = 0
    refused: dict = field(default_factory=dict)  # how opening failed -> count
    attempted: int = 0
    acked: int = 0
    errors: dict = field(default_factory=dict)   # error code -> count
    fanned_out: int = 0                          # its own messages delivered to its sockets
    closed: dict = field(default_factory=dict)   # how sockets ended during the flood -> count
    posting_secs: float = 0.0


def _count(table: dict, key) -> None:
    table[key] = table.get(key, 0) + 1


# the flooder, in a process of its own ---------------------------------------------------------

def flood_worker(url: str, token: str, group: str, sockets: int, rate: float, duration: float,
                 start_at: float) -> dict:
    return fanout.event_loop_runner()(_flood(url, token, group, sockets, rate, duration, start_at))


async def _flood(url, token, group, sockets, rate, duration, start_at) -> dict:
    result = FloodResult()
    connector = aiohttp.TCPConnector(limit=0, local_addr=(FLOODER_ADDRESS, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        limit = asyncio.Semaphore(OPEN_CONCURRENCY)

        async def open_one():
            async with limit:
                try:
                    ws = await http.ws_connect(url.replace("http", "ws", 1) + "/ws", max_msg_size=0)
                except aiohttp.WSServerHandshakeError as exc:
                    return _count(result.refused, f"HTTP {exc.status}")
                except aiohttp.ClientError as exc:
                    return _count(result.refused, type(exc).__name__)
                await ws.send_str(orjson.dumps({"op": "auth", "token": token}).decode())
                msg = await ws.receive(timeout=30)
                if msg.type == aiohttp.WSMsgType.TEXT and orjson.loads(msg.data)["op"] == "ready":
                    return ws
                _count(result.refused, f"close {ws.close_code or msg.data}")
                await ws.close()
        opened = [ws for ws in await asyncio.gather(*(open_one() for _ in range(sockets))) if ws is not None]
        result.opened = len(opened)
        stop = asyncio.Event()
        readers = [asyncio.create_task(_read(ws, result, stop)) for ws in opened]
        await asyncio.sleep(max(0.0, start_at - time.time()))
        started = time.monotonic()
        if opened:
            per_socket = rate / len(opened)
            await asyncio.gather(*(_post(ws, group, per_socket, duration, n / rate, result)
                                   for n, ws in enumerate(opened)))
        result.posting_secs = time.monotonic() - started
        await asyncio.sleep(DRAIN_SECS)
        stop.set()
        await asyncio.gather(*readers)
        for ws in opened:
            await ws.close()
    return asdict(result)


async def _post(ws, group: str, rate: float, duration: float, offset: float, result: FloodResult) -> None:
    interval = 1.0 / rate
    start = time.monotonic() + offset
    for n in range(int(rate * duration)):
        delay = start + n * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if ws.closed:
            return
        result.attempted += 1
        try:
            await ws.send_str(orjson.dumps({"op": "send", "group": group, "text": "flood", "ref": n}).decode())
        except ConnectionError:  # cut off (a slow consumer, say): the reader records how
            return


async def _read(ws, result: FloodResult, stop: asyncio.Event) -> None:
    async for frame in fanout.frames(ws, stop):
        op = frame["op"]
        if op == "message":
            result.fanned_out += 1
        elif op == "ack":
            result.acked += 1
        elif op == "error":
            _count(result.errors, frame["code"])
    if not stop.is_set():
        _count(result.closed, f"{ws.close_code}")


def half_open_worker(url: str, connections: int, duration: float, start_at: float) -> dict:
    return asyncio.run(_half_open(url, connections, duration, start_at))


async def _half_open(url: str, connections: int, duration: float, start_at: float) -> dict:
    """``connections`` slots, each a half-open connection reopened as soon as it ends; how they ended."""
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    endings: dict[str, int] = {}
    held: list[float] = []  # seconds each connection the server cut (without an answer) was held
    await asyncio.sleep(max(0.0, start_at - time.time()))
    deadline = time.monotonic() + duration

    async def slot() -> None:
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                reader, writer = await asyncio.open_connection(host, int(port), local_addr=(FLOODER_ADDRESS, 0))
            except OSError as exc:
                _count(endings, f"not connected ({type(exc).__name__})")
                await asyncio.sleep(0.1)
                continue
            try:
                writer.write(HALF_OPEN_HEAD)
                line = await asyncio.wait_for(reader.readline(), timeout=60)
            except (OSError, TimeoutError):
                line = b""
            finally:
                writer.close()
            secs = time.monotonic() - started
            if line:
                _count(endings, line.decode("latin-1").split(" ", 2)[1])
            elif secs < DROPPED_WITHIN_SECS:
                _count(endings, "dropped at once")
            else:
                _count(endings, "cut")
                held.append(secs)
    await asyncio.gather(*(slot() for _ in range(connections)))
    held.sort()
    return {"endings": endings, "held_p50": fanout.percentile(held, 0.5), "held_max": held[-1] if held else None}


# the bystanders ---------------------------------------------------------------------------------

async def register(http: aiohttp.ClientSession, url: str, name: str) -> dict:
    for path in ("/api/register", "/api/login"):
        async with http.post(url + path, json={"username": name, "password": PASSWORD}) as r:
            body = await r.json()
            if r.status >= 300:
                raise fanout.BenchError(f"{path} for {name}: {r.status} {body}")
    return {"token": body["token"], "id": body["user"]["id"]}


async def create_group(http, url: str, person: dict, name: str) -> str:
    async with http.post(url + "/api/groups", json={"name": name},
                         headers={"Authorization": f"Bearer {person['token']}"}) as r:
        body = await r.json()
        if r.status >= 300:
            raise fanout.BenchError(f"creating a group: {r.status} {body}")
    return body["group"]["id"]


async def chat(http, url: str, pair: list[dict], group: str, rate: float, duration: float) -> list[float]:
    """The pair take turns posting; each message's latency (ms) to the other's page. A message
    that never arrives counts as infinitely late."""
    pages = [await fanout.connect(http, url, person) for person in pair]
    sent: dict[str, float] = {}
    latencies: list[float] = []

    async def receive(page, stop):
        async for frame in fanout.frames(page, stop):
            if frame["op"] == "message" and frame["text"] in sent:
                latencies.append((time.monotonic() - sent.pop(frame["text"])) * 1000)
    stop = asyncio.Event()
    receivers = [asyncio.create_task(receive(page, stop)) for page in pages]
    start = time.monotonic()
    for n in range(int(rate * duration)):
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        text = f"chat {n} {secrets.token_hex(3)}"
        sent[text] = time.monotonic()
        await pages[n % 2].send_str(orjson.dumps({"op": "send", "group": group, "text": text, "ref": n}).decode())
    await asyncio.sleep(DRAIN_SECS)
    stop.set()
    await asyncio.gather(*receivers)
    for page in pages:
        await page.close()
    return latencies + [float("inf")] * len(sent)


# one run ---------------------------------------------------------------------------------------

async def run_once(url: str, args, name: str) -> dict:
    tag = secrets.token_hex(3)
    bystander_http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, local_addr=(BYSTANDER_ADDRESS, 0)))
    async with bystander_http as http:
        flooder = await register(http, url, f"f{tag}flooder")
        pair = [await register(http, url, f"f{tag}b{n}") for n in range(2)]
        flood_group = await create_group(http, url, flooder, f"flood {tag}")
        chat_group = await create_group(http, url, pair[0], f"chat {tag}")
        async with http.post(f"{url}/api/groups/{chat_group}/join",
                             headers={"Authorization": f"Bearer {pair[1]['token']}"}) as r:
            if r.status != 200:
                raise fanout.BenchError(f"joining the chat group: {r.status}")
        flood = None
        loop = asyncio.get_running_loop()
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            if name == "half-open":
                start_at = time.time() + 2.0
                flood = loop.run_in_executor(pool, half_open_worker, url, args.half_open, args.duration, start_at)
                await asyncio.sleep(max(0.0, start_at - time.time()) + 1.0)  # the flood is on
            elif name != "quiet":
                start_at = time.time() + OPEN_BUDGET_SECS
                flood = loop.run_in_executor(pool, flood_worker, url, flooder["token"], flood_group, args.sockets,
                                             args.flood_rate, args.duration, start_at)
                await asyncio.sleep(max(0.0, start_at - time.time()))
            started = time.monotonic()
            await register(http, url, f"f{tag}late")  # a newcomer registers and logs in meanwhile
            login_ms = (time.monotonic() - started) * 1000
            latencies = await chat(http, url, pair, chat_group, args.chat_rate, args.duration)
            result = await flood if flood is not None else None
    return {"run": name, "flood": result, "latencies_ms": latencies, "login_ms": login_ms}


def table(args, results: list[dict]) -> str:
    rows = ["| run | flood | what the flood got | newcomer registers + logs in (ms) "
            "| bystander chat p50 / p99 / max (ms) | bystander messages lost |", "|---|---|---|---|---|---|"]
    for r in results:
        lat = sorted(r["latencies_ms"])
        lost = sum(1 for x in lat if x == float("inf"))
        latency = " / ".join(f"{fanout.percentile(lat, q):.1f}" for q in (0.5, 0.99)) + f" / {lat[-1]:.1f}"
        flood, got = _described(args, r)
        rows.append(f"| {r['run']} | {flood} | {got} | {r['login_ms']:.0f} | {latency} | {lost} |")
    head = (f"{args.duration:g} s of flood; bystanders {args.chat_rate:g} msgs/s "
            f"({int(args.chat_rate * args.duration)} messages)")
    return head + "\n\n" + "\n".join(rows)


def _described(args, r: dict) -> tuple[str, str]:
    f = r["flood"]
    if f is None:
        return "none", "-"
    if "endings" in f:
        endings = ", ".join(f"{k} ×{n:,}" for k, n in sorted(f["endings"].items()))
        held = f" (cut after {f['held_p50']:.1f} s median, {f['held_max']:.1f} s max)" if f["held_max"] else ""
        endings = endings.replace("429 ×", "answered 429 ×").replace("503 ×", "answered 503 ×")
        return f"{args.half_open} half-open connections from one address", endings + held
    refused = ", ".join(f"{k} ×{n}" for k, n in sorted(f["refused"].items())) or "none refused"
    secs = max(f["posting_secs"], 1e-9)
    errors = ", ".join(f"{k} ×{n:,}" for k, n in sorted(f["errors"].items())) or "none refused"
    return (f"one account, {args.sockets} sockets tried, {args.flood_rate:g} posts/s tried",
            f"{f['opened']} sockets open ({refused}); {f['attempted'] / secs:,.0f} posts/s sent, "
            f"{f['acked'] / secs:,.1f}/s accepted ({errors}); {f['fanned_out']:,} frames fanned out to it")


def main(argv=None) -> int:
    args = parse_args(argv)
    runner = fanout.event_loop_runner()
    results = []
    try:
        for name in args.runs:
            if not args.start:
                results.append(runner(run_once(args.url.rstrip("/"), args, name)))
                continue
            # Flooder and bystanders come from addresses of their own: the caps per address apply.
            with fanout.private_stack(RUNS[name], one_machine=False) as url:
                results.append(runner(run_once(url, args, name)))
            print(table(args, results[-1:]), file=sys.stderr)  # as it goes, in case a later run fails
    except fanout.BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    print(table(args, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
