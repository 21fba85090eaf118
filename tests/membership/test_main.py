"""The membership process: it reports ready with its address, serves, stops on SIGTERM, and fails clearly."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chorus.common import readiness
from chorus.common.db import sqlite_url
from chorus.common.grpctls import ClientTls, channel
from chorus.common.keys import ensure_keys
from chorus.membership.config import Settings
from chorus.membership.main import run

STARTUP_TIMEOUT_SECS = 20

# What `chorus membership` does, without importing the other services' config modules.
LAUNCH = """
import argparse, os, sys
from chorus.membership import config, main
parser = argparse.ArgumentParser()
config.add_arguments(parser, os.environ)
sys.exit(main.run(config.settings_from_args(parser.parse_args(sys.argv[1:]), os.environ)))
"""


def test_a_taken_address_is_exit_code_2_with_a_clear_message(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = run(Settings(database_url=sqlite_url(tmp_path, "membership"), listen=f"127.0.0.1:{port}",
                            insecure_plaintext=True))
    assert code == 2
    assert f"membership: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_an_unsupported_database_is_exit_code_2(capsys):
    assert run(Settings(database_url="mysql://db/chorus", insecure_plaintext=True)) == 2
    assert "unsupported database 'mysql'" in capsys.readouterr().err


def test_an_unreachable_database_is_exit_code_1_without_the_password(capsys):
    assert run(Settings(database_url="postgresql://app:hunter2@127.0.0.1:1/chorus", insecure_plaintext=True)) == 1
    err = capsys.readouterr().err
    assert "membership: cannot open database postgresql://app:***@127.0.0.1:1/chorus" in err
    assert "hunter2" not in err


def test_a_broker_endpoint_zeromq_refuses_is_exit_code_2(tmp_path, capsys):
    settings = Settings(database_url=sqlite_url(tmp_path, "membership"), listen="127.0.0.1:0",
                        broker_router="tcp://127.0.0.1:notaport", insecure_plaintext=True)
    assert run(settings) == 2
    assert "membership: --broker-router tcp://127.0.0.1:notaport: Invalid argument" in capsys.readouterr().err


def readiness_of(process: subprocess.Popen) -> dict:
    """The readiness object the process writes on stdout (chorus.common.readiness)."""
    found: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [found.put(ready) for line in process.stdout
                                     if (ready := readiness.parse_line(line)) is not None],
                     daemon=True).start()
    try:
        return found.get(timeout=STARTUP_TIMEOUT_SECS)
    except queue.Empty:
        pytest.fail("the service never reported ready")


def test_the_process_serves_until_sigterm(tmp_path):
    ready_file = tmp_path / "membership.ready"
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path),
         "--ready-file", str(ready_file), "--keys-dir", str(ensure_keys(tmp_path / "keys") / "membership")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = readiness_of(process)
        address = ready["grpc"]
        assert address.startswith("127.0.0.1:") and not address.endswith(":0")
        assert readiness.read_file(ready_file) == ready == {"service": "membership", "pid": process.pid,
                                                           "grpc": address}
        with channel(address, ClientTls.load(tmp_path / "keys" / "membership")) as open_channel:
            reply = health_pb2_grpc.HealthStub(open_channel).Check(
                health_pb2.HealthCheckRequest(service="chorus.membership.v1.Membership"), timeout=5
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert (tmp_path / "membership.db").is_file()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STARTUP_TIMEOUT_SECS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
