"""The `chorus auth` process: it reports ready with its address, serves, stops on SIGTERM, and fails clearly."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading

import pytest

from chorus.auth.config import Settings
from chorus.auth.main import run
from chorus.common import readiness
from chorus.common.grpctls import ClientTls, channel
from chorus.common.keys import ensure_keys
from chorus.wire.pb import auth_pb2 as pb
from chorus.wire.pb import auth_pb2_grpc as pb_grpc

STARTUP_TIMEOUT_SECS = 20
CALL_TIMEOUT_SECS = 10
KEY = "process-test-signing-key-" + "x" * 32


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Chorus settings a developer may have exported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_") and k != "DATABASE_URL"}
    return {**env, **extra}


class AuthProcess:
    """`python -m chorus auth ...`: its readiness line read from stdout, its stderr kept."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "chorus", "auth", *args], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._ready: queue.Queue = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._stderr_reader = threading.Thread(target=lambda: self._stderr.extend(self.process.stderr), daemon=True)
        self._stderr_reader.start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            if (ready := readiness.parse_line(line)) is not None:
                self._ready.put(ready)
        self._ready.put(None)  # end of output

    def announcement(self) -> str | None:
        """The gRPC address of its readiness line, or None if the process ended without one."""
        try:
            ready = self._ready.get(timeout=STARTUP_TIMEOUT_SECS)
        except queue.Empty:
            pytest.fail(f"auth neither reported ready nor exited:\n{self.stderr()}")
        if ready is None:
            return None
        assert ready["service"] == "auth" and ready["pid"] == self.process.pid, ready
        return ready["grpc"]

    def exit_code(self) -> int:
        try:
            return self.process.wait(timeout=STARTUP_TIMEOUT_SECS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"auth did not exit within {STARTUP_TIMEOUT_SECS}s:\n{self.stderr()}")

    def stderr(self) -> str:
        """Everything written so far; all of it once the process has exited."""
        if self.process.poll() is not None:
            self._stderr_reader.join(STARTUP_TIMEOUT_SECS)
        return "".join(self._stderr)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def start():
    """``start(args, env)``: an AuthProcess, killed after the test if it is still running."""
    started: list[AuthProcess] = []

    def start(args: list[str], env: dict[str, str]) -> AuthProcess:
        started.append(AuthProcess(args, env))
        return started[-1]

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def keys(tmp_path) -> list[str]:
    """auth's flags for its own folder of `chorus keys`."""
    return ["--keys-dir", str(ensure_keys(tmp_path / "keys") / "auth")]


def test_the_process_serves_until_sigterm_and_keeps_logins_across_restarts(start, tmp_path, keys):
    env = clean_env(CHORUS_TOKEN_KEY=KEY)
    first = start(["--listen", "127.0.0.1:0", "--data-dir", str(tmp_path), *keys], env)
    address = first.announcement()
    assert address and address.startswith("127.0.0.1:") and not address.endswith(":0"), first.stderr()
    port = int(address.rpartition(":")[2])
    args = ["--listen", address, "--data-dir", str(tmp_path), *keys]
    gateway = ClientTls.load(tmp_path / "keys" / "gateway")
    with channel(f"127.0.0.1:{port}", gateway) as open_channel:
        stub = pb_grpc.AuthStub(open_channel)
        ann = stub.Register(pb.RegisterRequest(username="ann", password="correct horse battery"),
                            timeout=CALL_TIMEOUT_SECS).account
        token = stub.Login(pb.LoginRequest(username="ann", password="correct horse battery"),
                           timeout=CALL_TIMEOUT_SECS).token
    assert (ann.username, ann.display_name) == ("ann", "ann")
    assert (tmp_path / "auth.db").is_file()
    first.process.send_signal(signal.SIGTERM)
    assert first.exit_code() == 0, first.stderr()

    second = start(args, env)
    assert second.announcement() == f"127.0.0.1:{port}", second.stderr()
    with channel(f"127.0.0.1:{port}", gateway) as open_channel:
        reply = pb_grpc.AuthStub(open_channel).Authenticate(pb.AuthenticateRequest(token=token),
                                                       timeout=CALL_TIMEOUT_SECS)
    assert reply.account == ann
    second.process.send_signal(signal.SIGTERM)
    assert second.exit_code() == 0, second.stderr()


def test_a_port_in_use_is_exit_code_2_with_a_clear_message(start, tmp_path, keys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start(["--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path), *keys],
                        clean_env(CHORUS_TOKEN_KEY=KEY))
        assert process.exit_code() == 2
    assert f"auth: cannot listen on 127.0.0.1:{port}" in process.stderr()


def test_a_second_auth_on_the_same_port_is_refused_not_shared(start, tmp_path, keys):
    env = clean_env(CHORUS_TOKEN_KEY=KEY)
    first = start(["--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "one"), *keys], env)
    port = int(first.announcement().rpartition(":")[2])
    second = start(["--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "two"), *keys], env)
    assert second.announcement() is None, "the second server also listens on the port"
    assert second.exit_code() == 2
    assert f"auth: cannot listen on 127.0.0.1:{port}" in second.stderr()


def test_no_keys_and_no_insecure_plaintext_exits_2_saying_what_is_needed(start, tmp_path):
    process = start(["--listen", "127.0.0.1:0", "--data-dir", str(tmp_path)], clean_env(CHORUS_TOKEN_KEY=KEY))
    assert process.exit_code() == 2
    assert "auth: --keys-dir is needed: internal traffic is authenticated and encrypted" in process.stderr()
    assert not (tmp_path / "auth.db").exists()


def test_a_missing_key_exits_nonzero_naming_chorus_token_key(start, tmp_path, keys):
    process = start(["--listen", "127.0.0.1:0", "--data-dir", str(tmp_path), *keys], clean_env())
    assert process.exit_code() == 2
    err = process.stderr()
    assert "auth: no token signing key: set CHORUS_TOKEN_KEY" in err
    assert not (tmp_path / "auth.db").exists()


def test_a_short_key_exits_nonzero_saying_how_long_it_must_be(start, tmp_path):
    process = start(["--data-dir", str(tmp_path)], clean_env(CHORUS_TOKEN_KEY="too short"))
    assert process.exit_code() == 2
    assert "CHORUS_TOKEN_KEY is 9 bytes; it must be at least 32" in process.stderr()


def test_an_unsupported_database_is_exit_code_2(capsys):
    assert run(Settings(database_url="mysql://db/chorus", token_key=KEY.encode(), listen="127.0.0.1:0",
                        insecure_plaintext=True)) == 2
    assert "auth: unsupported database 'mysql'" in capsys.readouterr().err


def test_an_unreachable_database_is_exit_code_1_without_the_password(capsys):
    settings = Settings(database_url="postgresql://app:hunter2@127.0.0.1:1/chorus", token_key=KEY.encode(),
                        listen="127.0.0.1:0", insecure_plaintext=True)
    assert run(settings) == 1
    err = capsys.readouterr().err
    assert "auth: cannot open database postgresql://app:***@127.0.0.1:1/chorus" in err
    assert "hunter2" not in err

