"""Fan-out benchmark of issue 6: Chorus against Socket.IO 4 (Node) and python-socketio 5.

    .venv/bin/python bench/run.py --start --peers          # the full run, one markdown report
    .venv/bin/python bench/run.py --url http://127.0.0.1:8080 --server-pid PID   # a running stack

U users, one WebSocket each (Chorus: registered and logged in through the HTTP API); user i
is in groups (i*K + j) mod G for j < K. A Node load generator (bench/node/gen.js, on `ws`, with an
adapter for Socket.IO) holds every socket; S senders post R msgs/s in total for D seconds, every
text carrying its send time, and the receivers in the same process measure latency on that
clock. This script sets things up, pins the servers to CPU 0 and the generator to CPU 1,
reads CPU time and peak RSS from /proc, and prints markdown tables. Every process it starts
is stopped at the end, also on Ctrl-C or an error. See bench/README.md for every option.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

import fanout

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
PEERS_VENV = HERE / ".peers-venv"
PEERS_REQUIREMENTS = HERE / "peers-requirements.txt"
SERVER_CPU, GENERATOR_CPU = 0, 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PEER_START_TIMEOUT_SECS = 30
STOP_GRACE_SECS = 15
SETTLE_MAX_SECS = 30.0  # between runs: wait until the servers are idle (an overloaded one drains its backlog)
SETTLE_IDLE_CPU = 0.10  # ... that is, under 10% of a CPU over half a second
RAMP_PATIENCE = 2  # the ramp stops after this many failing steps in a row (one can be a scheduling hiccup)
# The webgate's per-socket and per-account flood limits (20 frames/s, 20 posts/s) would cap a
# sender long before the server is loaded; the started stack lifts them, so the ramp measures
# fan-out rather than the limiter (fanout.start_stack also lifts the per-address caps).
UNTHROTTLED = {"CHORUS_WS_MESSAGES_PER_SEC": "1000000", "CHORUS_WS_MESSAGES_BURST": "1000000",
               "CHORUS_ACCOUNT_POSTS_PER_SEC": "1000000", "CHORUS_ACCOUNT_POSTS_BURST": "1000000"}
SYSTEMS = {"chorus": "Chorus", "socketio": "Socket.IO 4 (Node)", "pysocketio": "python-socketio 5"}


class Failed(Exception):
    """Something the benchmark needs did not work; the message says what."""


# ---------------------------------------------------------------- arguments

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--start", action="store_true", help="start a private `chorus up` on free ports")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="Chorus webgate base URL (without --start)")
    p.add_argument("--server-pid", type=int, action="append", default=[],
                   help="with --url: pid of `chorus up` (or of one service; repeatable); its children count too")
    p.add_argument("--peers", action="store_true", help="also measure Socket.IO 4 on Node and python-socketio 5")
    p.add_argument("--only-peers", action="store_true", help="measure the peers but not Chorus")
    p.add_argument("--users", type=int, default=1000, help="U: users, one WebSocket each")
    p.add_argument("--groups", type=int, default=30, help="G: groups")
    p.add_argument("--groups-per-user", type=int, default=3, help="K: groups each user joins")
    p.add_argument("--senders", type=int, default=30, help="S: users that post")
    p.add_argument("--rate", type=float, default=200.0, help="R of the fixed-rate run, msgs/s, all senders together")
    p.add_argument("--duration", type=float, default=10.0, help="D: seconds of sending per run and ramp step")
    p.add_argument("--drain", type=float, default=5.0, help="seconds to wait for late deliveries after sending")
    p.add_argument("--no-ramp", action="store_true", help="only the fixed-rate run")
    p.add_argument("--ramp-start", type=float, default=50.0, help="first ramp rate; each step doubles it")
    p.add_argument("--ramp-max", type=float, default=12800.0, help="highest ramp rate tried")
    p.add_argument("--ramp-refine", type=int, default=2,
                   help="after the doubling ramp, this many bisection steps between the last pass and the first fail")
    p.add_argument("--p99-limit-ms", type=float, default=200.0, help="a ramp step passes with zero loss and p99 under this")
    p.add_argument("--repeat", type=int, default=1, help="run everything N times; the summary shows medians")
    p.add_argument("--connections", type=int, default=0,
                   help="also: N idle authenticated sockets to the webgate (RSS per connection), "
                        "then one post to a group of every user, delivered to all N")
    p.add_argument("--no-pin", action="store_true", help="do not pin servers and generator to separate CPUs")
    p.add_argument("--nice", type=int, default=-15 if os.geteuid() == 0 else 0,
                   help="nice level of servers and generator during the runs (root: -15, shielding them from "
                        "other work on the machine; 0 leaves it)")
    p.add_argument("--setup-concurrency", type=int, default=fanout.SETUP_CONCURRENCY,
                   help="parallel HTTP calls while registering users (argon2 bounds it)")
    p.add_argument("--profile", metavar="DIR", help="one more fixed-rate run of Chorus, under py-spy; output to DIR")
    p.add_argument("--report", metavar="FILE", help="only print the tables again from a --json FILE of an earlier run")
    p.add_argument("--json", metavar="FILE", help="also write every raw figure to FILE")
    args = p.parse_args(argv)
    for name in ("users", "groups", "groups_per_user", "senders", "repeat", "setup_concurrency"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.groups_per_user > args.groups or args.senders > args.users:
        p.error("--groups-per-user cannot exceed --groups, nor --senders --users")
    if not (0 < args.rate <= 100_000 and 0 < args.duration <= 600 and 0 <= args.drain <= 120):
        p.error("--rate must be in (0, 100000], --duration in (0, 600], --drain in [0, 120]")
    if not (0 < args.ramp_start <= args.ramp_max <= 100_000) or not 0 <= args.ramp_refine <= 10:
        p.error("need 0 < --ramp-start <= --ramp-max <= 100000 and --ramp-refine in [0, 10]")
    if args.connections < 0 or args.connections > fd_limit() - 200:
        p.error(f"--connections must be in [0, {fd_limit() - 200}] (open files limit)")
    args.systems = ([] if args.only_peers else ["chorus"]) + (["socketio", "pysocketio"]
                                                              if args.peers or args.only_peers else [])
    args.pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    return args


def fd_limit() -> int:
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # every child inherits it
    return hard


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc

def descendants(root: int) -> list[int]:
    """root and every process below it (`chorus up` starts its services in their own sessions)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far; (0, 0) once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS  # utime, stime


def cpu_secs(pid: int) -> float:
    return sum(cpu_split(pid))


def status_mib(pid: int, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def label(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return str(pid)
    words = [a.decode() for a in argv if a]
    if "chorus" in words:  # python -m chorus SERVICE ...
        rest = words[words.index("chorus") + 1:]
        return f"chorus {rest[0]}" if rest else "chorus"
    return " ".join(Path(w).name for w in words[:2])


def pin(pids: list[int], cpu: int | None, nice: int) -> None:
    """Every thread of pids onto cpu (None: leave), at nice level `nice`, and so the autogroup of each
    (with autogroup scheduling, a session's processes share one weight against other sessions')."""
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task") if Path(f"/proc/{pid}/task").exists() else []:
            with contextlib.suppress(OSError):
                if cpu is not None:
                    os.sched_setaffinity(int(tid), {cpu})
                if nice:
                    os.setpriority(os.PRIO_PROCESS, int(tid), nice)
        if nice:
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/autogroup").write_text(str(nice))


def on_cpu(cpu: int | None):
    return (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None


# ---------------------------------------------------------------- set-up of the tools

def ensure_node() -> None:
    stamp = NODE_DIR / "node_modules" / ".package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < (NODE_DIR / "package-lock.json").stat().st_mtime:
        log("installing the Node generator's packages (npm ci) into", NODE_DIR)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, check=True)


def ensure_peers_venv() -> Path:
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".installed"
    if not python.exists():
        log("creating", PEERS_VENV)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    if not stamp.exists() or stamp.stat().st_mtime < PEERS_REQUIREMENTS.stat().st_mtime:
        log("installing python-socketio into", PEERS_VENV)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(PEERS_REQUIREMENTS)], check=True)
        stamp.touch()
    return python


# ---------------------------------------------------------------- processes

def stop(process: subprocess.Popen, also: list[int] = (), sig=signal.SIGTERM) -> None:
    """Signal, wait, then kill what is left, including `also` (pids found below it at start)."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(STOP_GRACE_SECS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in also:
        if pid != process.pid and Path(f"/proc/{pid}").exists() and "chorus" in label(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


class Generator:
    """The Node generator: JSON commands on its stdin, JSON events on its stdout."""

    def __init__(self, config: dict, cpu: int | None, exits: contextlib.ExitStack):
        self.config_file = exits.enter_context(tempfile.NamedTemporaryFile("w", suffix=".json", prefix="bench-"))
        json.dump(config, self.config_file)
        self.config_file.flush()
        self.process = subprocess.Popen(["node", str(NODE_DIR / "gen.js"), self.config_file.name],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        preexec_fn=on_cpu(cpu))
        exits.callback(self.close)
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.events.put(json.loads(line))
        self.events.put({"event": "error", "message": f"generator exited ({self.process.wait()})"})

    def command(self, timeout: float, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            raise Failed(f"generator gave no answer to {command['cmd']} within {timeout:.0f}s") from None
        if event["event"] == "error":
            raise Failed(f"generator: {event['message']}")
        return event

    def cpu(self) -> float:
        return cpu_secs(self.process.pid)

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.stdin.write('{"cmd": "quit"}\n')
                self.process.stdin.flush()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class System:
    key: str
    ws_url: str
    users: list[dict]          # {id, token?, groups}
    pids: list[int] = field(default_factory=list)
    big_group: str | None = None

    @property
    def name(self) -> str:
        return SYSTEMS[self.key]

    @property
    def kind(self) -> str:
        return "chorus" if self.key == "chorus" else "socketio"


def start_chorus(args, exits: contextlib.ExitStack) -> System:
    if args.start:
        data_dir = exits.enter_context(tempfile.TemporaryDirectory(prefix="chorus-bench-"))
        log("starting chorus up")
        process, url = fanout.start_stack(data_dir, UNTHROTTLED)
        pids = descendants(process.pid)
        exits.callback(stop, process, pids, signal.SIGINT)
    else:
        url = args.url.rstrip("/")
        pids = sorted({p for root in args.server_pid for p in descendants(root)})
        if not pids:
            log("no --server-pid: server CPU and RSS are not measured, and nothing is pinned")
    t0 = time.monotonic()
    users, big = asyncio.run(chorus_users(url, args))
    log(f"{len(users)} Chorus users registered and logged in in {time.monotonic() - t0:.0f}s")
    return System("chorus", url.replace("http", "ws", 1) + "/ws",
                  [{"id": u["id"], "token": u["token"], "groups": u["groups"]} for u in users], pids, big)


async def chorus_users(url: str, args) -> tuple[list[dict], str | None]:
    fanout.SETUP_CONCURRENCY = args.setup_concurrency
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        users, _ = await fanout.setup(http, url, args)
        if not args.connections:
            return users, None
        # one more group with every user in it, for the --connections post
        limit = asyncio.Semaphore(args.setup_concurrency)

        async def call(path, token, body=None):
            async with limit, http.post(url + path, json=body,
                                        headers={"Authorization": f"Bearer {token}"}) as r:
                if r.status >= 300:
                    raise Failed(f"POST {path}: {r.status} {await r.text()}")
                return await r.json()

        big = (await call("/api/groups", users[0]["token"], {"name": f"bench all {os.getpid()} {time.time():.0f}"}))
        big = big["group"]["id"]
        await asyncio.gather(*(call(f"/api/groups/{big}/join", u["token"]) for u in users[1:]))
        return users, big


def start_peer(key: str, args, exits: contextlib.ExitStack) -> System:
    port = fanout.free_port()
    if key == "socketio":
        command = ["node", str(NODE_DIR / "sio-server.js"), str(port)]
    else:
        command = [str(ensure_peers_venv()), str(HERE / "pysio_server.py"), str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True,  # like chorus up's
                               preexec_fn=on_cpu(SERVER_CPU if args.pin else None))
    exits.callback(stop, process)
    deadline = time.monotonic() + PEER_START_TIMEOUT_SECS
    while time.monotonic() < deadline:  # bounded: the server prints one line, or exits
        line = process.stdout.readline()
        if "listening" in line:
            break
        if not line and process.poll() is not None:
            raise Failed(f"{SYSTEMS[key]} server exited with {process.returncode}")
    else:
        raise Failed(f"{SYSTEMS[key]} server did not start")
    users = [{"id": f"u{i}", "groups": [f"g{(i * args.groups_per_user + j) % args.groups}"
                                        for j in range(args.groups_per_user)]} for i in range(args.users)]
    return System(key, f"http://127.0.0.1:{port}", users, [process.pid])


# ---------------------------------------------------------------- measuring

def start_profilers(system: System, args) -> list[tuple[str, subprocess.Popen, Path]]:
    """py-spy (raw collapsed stacks with native frames, 100 Hz) on every Chorus service."""
    out_dir = Path(args.profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    py_spy = ensure_peers_venv().parent / "py-spy"
    profilers = []
    for pid in system.pids:
        name = label(pid).replace("chorus ", "")
        if name in ("up", "chorus"):
            continue
        out = out_dir / f"{name}.txt"
        command = [str(py_spy), "record", "--pid", str(pid), "--duration", str(int(args.duration + 1)),
                   "--rate", "100", "--native", "--format", "raw", "--output", str(out)]
        profilers.append((name, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                 preexec_fn=on_cpu(GENERATOR_CPU if args.pin else None)), out))
    return profilers


IDLE_LEAVES = ("epoll_wait", "epoll_pwait", "poll ", "select ", "pthread_cond_wait", "pthread_cond_timedwait",
               "__futex_abstimed_wait", "futex_wait", "syscall ", "clock_nanosleep", "nanosleep", "__select")


def finish_profilers(profilers, top: int = 15) -> None:
    """Wait for py-spy; write NAME-top.txt: the functions with the most busy samples, self and total
    (with native frames py-spy also samples threads waiting in epoll and the like: those are left out)."""
    for name, process, out in profilers:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            continue
        if not out.exists():
            log(f"profile of {name}: py-spy wrote nothing")
            continue
        own, total, samples = {}, {}, 0
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames, n = stack.split(";"), int(count)
            if frames[-1].startswith(IDLE_LEAVES) or any(f.startswith("PyThread_acquire_lock") for f in frames):
                continue
            samples += n
            own[frames[-1]] = own.get(frames[-1], 0) + n
            for frame in set(frames):
                total[frame] = total.get(frame, 0) + n
        lines = [f"{name}: {samples} busy samples at 100 Hz", "", "self %  function"]
        lines += [f"{100 * n / samples:5.1f}  {f}" for f, n in sorted(own.items(), key=lambda x: -x[1])[:top]]
        lines += ["", "total %  function"]
        lines += [f"{100 * n / samples:5.1f}  {f}" for f, n in sorted(total.items(), key=lambda x: -x[1])[:top * 2]]
        (out.parent / f"{name}-top.txt").write_text("\n".join(lines) + "\n")
        log(f"profile of {name} in {out.parent / (name + '-top.txt')}")


def measure(system: System, generator: Generator, args, step: int, rate: float, kind: str, rep: int) -> dict:
    profilers = start_profilers(system, args) if kind == "profiled" else []
    before = {pid: cpu_secs(pid) for pid in system.pids}
    gen_before = generator.cpu()
    wall = time.monotonic()
    res = generator.command(args.duration + args.drain + 60, cmd="run", step=step, rate=rate,
                            duration=args.duration, drain=args.drain)
    per_process = {pid: cpu_secs(pid) - before[pid] for pid in system.pids}
    finish_profilers(profilers)
    res.update(system=system.key, kind=kind, rep=rep, rate=rate, gen_cpu=generator.cpu() - gen_before,
               wall_secs=time.monotonic() - wall,
               server_cpu=sum(per_process.values()) if system.pids else None)
    res["loss"] = res["expected"] - res["delivered"]
    res["deliveries_per_s"] = res["delivered"] / max(res["active_secs"], 1e-9)
    res["cpu_us_per_delivery"] = (res["server_cpu"] * 1e6 / res["delivered"]
                                  if res["server_cpu"] is not None and res["delivered"] else None)
    res["ok"] = (res["loss"] == 0 and res["errors"] == 0 and res["closed"] == 0 and res["sent"] == res["acked"]
                 and res["p99"] is not None and res["p99"] < args.p99_limit_ms)
    log(f"{system.key} {kind} R={rate:g}: {res['delivered']}/{res['expected']} delivered, "
        f"{res['deliveries_per_s']:,.0f}/s, p99 {res['p99']} ms, server CPU {res['server_cpu']}, "
        f"gen CPU {res['gen_cpu']:.2f}s {'ok' if res['ok'] else 'FAIL'}")
    settle(system)
    return res


def settle(system: System) -> None:
    """Wait (bounded) until the server processes are idle, so one run's backlog stays out of the next."""
    deadline = time.monotonic() + SETTLE_MAX_SECS
    before = sum(cpu_secs(pid) for pid in system.pids)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = sum(cpu_secs(pid) for pid in system.pids)
        if now - before < SETTLE_IDLE_CPU * 0.5:
            return
        before = now


def bench_system(system: System, args, exits: contextlib.ExitStack) -> tuple[list[dict], dict]:
    with contextlib.ExitStack() as gen_exits:
        generator = Generator({"kind": system.kind, "url": system.ws_url, "users": system.users,
                               "senders": args.senders}, GENERATOR_CPU if args.pin else None, gen_exits)
        connected = generator.command(120 + args.users / 20, cmd="connect", sockets=args.users)
        if connected["failures"]:
            raise Failed(f"{system.name}: {connected['failures']} sockets failed: {connected['error']}")
        log(f"{system.key}: {connected['sockets']} sockets in {connected['secs']:.1f}s")
        pin(system.pids, SERVER_CPU if args.pin else None, args.nice)
        pin([generator.process.pid, os.getpid()], GENERATOR_CPU if args.pin else None, args.nice)
        cpu0 = {pid: cpu_split(pid) for pid in system.pids}
        rows, step = [], 0
        for rep in range(args.repeat):
            step += 1
            rows.append(measure(system, generator, args, step, args.rate, "fixed", rep))
            rate, failed = args.ramp_start, 0
            while not args.no_ramp and rate <= args.ramp_max and failed < RAMP_PATIENCE:  # bounded by --ramp-max
                step += 1
                rows.append(measure(system, generator, args, step, rate, "ramp", rep))
                failed = 0 if rows[-1]["ok"] else failed + 1
                rate *= 2
            ramp = [r for r in rows if r["rep"] == rep and r["kind"] == "ramp"]
            passed = max((r["rate"] for r in ramp if r["ok"]), default=None)
            failed_at = min((r["rate"] for r in ramp if not r["ok"] and r["rate"] > (passed or 0)), default=None)
            for _ in range(args.ramp_refine if passed and failed_at else 0):  # bisect between pass and fail
                step += 1
                rate = round((passed + failed_at) / 2)
                rows.append(measure(system, generator, args, step, rate, "ramp", rep))
                passed, failed_at = (rate, failed_at) if rows[-1]["ok"] else (passed, rate)
        if args.profile and system.key == "chorus":  # an extra run: sampling slows the servers down
            step += 1
            rows.append(measure(system, generator, args, step, args.rate, "profiled", 0))
        processes = {pid: {"process": label(pid), "user": cpu_split(pid)[0] - cpu0[pid][0],
                           "system": cpu_split(pid)[1] - cpu0[pid][1],
                           "peak_rss_mib": status_mib(pid, "VmHWM")} for pid in system.pids}
        return rows, processes


def connections_scenario(system: System, args, exits: contextlib.ExitStack) -> dict:
    webgate = [pid for pid in system.pids if label(pid) == "chorus webgate"]
    with contextlib.ExitStack() as gen_exits:
        users = [{**u, "groups": u["groups"] + [system.big_group]} for u in system.users]
        generator = Generator({"kind": "chorus", "url": system.ws_url, "users": users, "senders": 1},
                              GENERATOR_CPU if args.pin else None, gen_exits)
        pin([generator.process.pid], None, args.nice)
        time.sleep(1)
        rss0 = status_mib(webgate[0], "VmRSS") if webgate else None
        connected = generator.command(120 + args.connections / 20, cmd="connect", sockets=args.connections)
        time.sleep(2)
        rss1 = status_mib(webgate[0], "VmRSS") if webgate else None
        log(f"connections: {connected['sockets']} live ({connected['failures']} failed) in {connected['secs']:.1f}s")
        res = generator.command(args.drain + 60, cmd="post", step=1, group=system.big_group, drain=max(args.drain, 10))
    res.update(sockets=connected["sockets"], failures=connected["failures"], connect_secs=connected["secs"],
               group_members=len(system.users), rss_before_mib=rss0, rss_after_mib=rss1,
               kib_per_connection=(rss1 - rss0) * 1024 / max(1, connected["sockets"]) if webgate else None)
    return res


# ---------------------------------------------------------------- report

def fmt(value, spec=",.0f", none="–") -> str:
    return none if value is None else format(value, spec)


def load(cpu: float | None, row: dict) -> str:
    """CPU seconds as a share of one core over the run (sending and draining): near 100%, that side saturated."""
    secs = row.get("wall_secs") or max(row["send_secs"], row["active_secs"])
    return "–" if cpu is None or not secs else f"{100 * cpu / secs:.0f}%"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(rows: list[dict], processes: dict, key: str, args) -> dict:
    mine = [r for r in rows if r["system"] == key]
    sustained = [max([r["deliveries_per_s"] for r in mine if r["rep"] == rep and r["kind"] == "ramp" and r["ok"]],
                     default=None) for rep in range(args.repeat)]
    fixed = [r for r in mine if r["kind"] == "fixed"]
    pick = lambda name: median([r[name] for r in fixed])  # noqa: E731
    return {"max_sustained": None if args.no_ramp else median(sustained),
            "fixed_deliveries_per_s": pick("deliveries_per_s"), "fixed_p50": pick("p50"), "fixed_p99": pick("p99"),
            "fixed_loss": pick("loss"), "cpu_us_per_delivery": pick("cpu_us_per_delivery"),
            "gen_cpu": pick("gen_cpu"), "fixed_secs": pick("active_secs"),
            "peak_rss_mib": sum(p["peak_rss_mib"] for p in processes.values()) if processes else None,
            "peak_rss_no_auth_mib": sum(p["peak_rss_mib"] for p in processes.values() if p["process"] != "chorus auth")
            if processes else None}


def report(args, rows, processes_by_system, summaries, conn) -> None:
    keys = [k for k in args.systems if k in summaries]
    print(f"\n### Fan-out: U={args.users} G={args.groups} K={args.groups_per_user} "
          f"(M={args.users * args.groups_per_user // args.groups} members per group), S={args.senders}, "
          f"D={args.duration:g}s per run, {'pinned: servers CPU 0, generator CPU 1' if args.pin else 'not pinned'}\n")
    head = ["metric"] + [SYSTEMS[k] for k in keys] + [f"Chorus / {SYSTEMS[k]}" for k in keys if k != "chorus"
                                                       and "chorus" in keys]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    lines = [
        (f"max sustained deliveries/s (zero loss, p99 < {args.p99_limit_ms:g} ms)", "max_sustained", ",.0f"),
        (f"deliveries/s at R={args.rate:g}", "fixed_deliveries_per_s", ",.0f"),
        (f"loss at R={args.rate:g}", "fixed_loss", ",.0f"),
        (f"latency p50 at R={args.rate:g} (ms)", "fixed_p50", ".2f"),
        (f"latency p99 at R={args.rate:g} (ms)", "fixed_p99", ".2f"),
        (f"server CPU µs per delivery at R={args.rate:g}", "cpu_us_per_delivery", ".2f"),
        (f"generator CPU s at R={args.rate:g} (run s)", "gen_cpu", ".2f"),
        ("peak RSS of the server processes (MiB)", "peak_rss_mib", ",.0f"),
        ("... without Chorus's auth (argon2 during set-up) (MiB)", "peak_rss_no_auth_mib", ",.0f"),
    ]
    for title, name, spec in lines:
        values = [summaries[k][name] for k in keys]
        if name == "gen_cpu":
            cells = [f"{fmt(summaries[k]['gen_cpu'], spec)} ({fmt(summaries[k]['fixed_secs'], '.1f')})" for k in keys]
        else:
            cells = [fmt(v, spec) for v in values]
        ratios = []
        if "chorus" in keys:
            for k in keys[1:]:
                a, b = summaries["chorus"][name], summaries[k][name]
                ratios.append(f"{a / b:.2f}x" if a is not None and b else "–")
        print("| " + " | ".join([title] + cells + ratios) + " |")
    print("\nRatios are Chorus ÷ peer: above 1 is better for deliveries/s, below 1 is better for latency, "
          "CPU and RSS." + (f" Medians of {args.repeat} repetitions." if args.repeat > 1 else ""))

    print("\n### Every run\n")
    print("| system | rep | run | R msgs/s | sent / acked / errors | deliveries expected / received | loss | deliveries/s "
          "| p50 / p90 / p99 / max (ms) | server CPU s (% of a core) | server CPU µs/delivery "
          "| generator CPU s (% of a core) | pass |")
    print("|" + "---|" * 13)
    for r in rows:
        lat = " / ".join(fmt(r[q], ".1f") for q in ("p50", "p90", "p99", "max"))
        print(f"| {SYSTEMS[r['system']]} | {r['rep'] + 1} | {r['kind']} | {r['rate']:g} | {r['sent']} / {r['acked']} / {r['errors']} "
              f"| {r['expected']} / {r['delivered']} | {r['loss']} | {r['deliveries_per_s']:,.0f} | {lat} "
              f"| {fmt(r['server_cpu'], '.2f')} ({load(r['server_cpu'], r)}) | {fmt(r['cpu_us_per_delivery'], '.1f')} "
              f"| {r['gen_cpu']:.2f} ({load(r['gen_cpu'], r)}) "
              f"| {'yes' if r['ok'] else 'no'} |")

    print("\n### Server processes (CPU over all runs, peak RSS since start)\n")
    print("| system | process | CPU s user / system | peak RSS MiB |\n|---|---|---|---|")
    for key, processes in processes_by_system.items():
        for p in processes.values():
            print(f"| {SYSTEMS[key]} | {p['process']} | {p['user']:.1f} / {p['system']:.1f} "
                  f"| {p['peak_rss_mib']:,.1f} |")

    if conn:
        print(f"\n### Idle connections: {conn['sockets']} authenticated WebSockets to one webgate\n")
        print("| metric | value |\n|---|---|")
        print(f"| sockets live / failed (connect time s) | {conn['sockets']} / {conn['failures']} "
              f"({conn['connect_secs']:.1f}) |")
        print(f"| webgate RSS before / after (MiB) | {fmt(conn['rss_before_mib'], '.1f')} / "
              f"{fmt(conn['rss_after_mib'], '.1f')} |")
        print(f"| webgate RSS per connection (KiB) | {fmt(conn['kib_per_connection'], '.1f')} |")
        print(f"| one post to a {conn['group_members']}-member group: deliveries expected / received | "
              f"{conn['expected']} / {conn['delivered']} |")
        print(f"| latency p50 / p99 / max (ms) | " + " / ".join(fmt(conn[q], ".1f") for q in ("p50", "p99", "max"))
              + " |")


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        report(argparse.Namespace(**saved["args"]), saved["rows"], saved["processes"], saved["summaries"],
               saved["connections"])
        return 0
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background, where it is ignored
    rows, processes_by_system, summaries, conn = [], {}, {}, None
    try:
        ensure_node()
        if "pysocketio" in args.systems:
            ensure_peers_venv()
        for key in args.systems:
            with contextlib.ExitStack() as exits:  # the system and its generator stop here, whatever happens
                system = start_chorus(args, exits) if key == "chorus" else start_peer(key, args, exits)
                if args.pin:
                    os.sched_setaffinity(0, {GENERATOR_CPU})
                mine, processes_by_system[key] = bench_system(system, args, exits)
                rows += mine
                summaries[key] = summarize(rows, processes_by_system[key], key, args)
                if key == "chorus" and args.connections:
                    conn = connections_scenario(system, args, exits)
                os.sched_setaffinity(0, set(range(os.cpu_count())))
    except (Failed, fanout.BenchError, subprocess.CalledProcessError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; every process started was stopped", file=sys.stderr)
        return 130
    finally:
        if args.json and rows:
            Path(args.json).write_text(json.dumps({"args": {k: v for k, v in vars(args).items()}, "rows": rows,
                                                   "processes": processes_by_system, "summaries": summaries,
                                                   "connections": conn}, indent=1, default=str))
    report(args, rows, processes_by_system, summaries, conn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
