"""Every service binds port 0 when asked and says where it ended up: in its readiness line on
stdout and, with --ready-file, in a file (docs/architecture.md, "Readiness")."""

from __future__ import annotations

import secrets
import socket
import urllib.request

import pytest

from chorus.common import readiness
from chorus.common.keys import ensure_keys
from processes import Service, service_env


def reachable(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError:
        return False
    return True


@pytest.fixture
def start(tmp_path):
    """``start(name, args)``: a Service with a ready file, stopped afterwards."""
    started: list[Service] = []
    env = service_env(secrets.token_urlsafe(32))

    def start(name: str, args: list[str]) -> Service:
        ready_file = tmp_path / f"{name}.ready"
        service = Service(name, [*args, "--ready-file", str(ready_file)], env, tmp_path)
        started.append(service)
        service.start()
        assert readiness.read_file(ready_file) == service.ready, "the file holds the line's object"
        assert service.ready["service"] == name and service.ready["pid"] == service.process.pid
        return service

    yield start
    for service in started:
        assert service.stop() == 0


def test_auth_reports_the_port_it_bound(start, tmp_path):
    auth = start("auth", ["--listen", "127.0.0.1:0", "--data-dir", str(tmp_path),
                          "--keys-dir", str(ensure_keys(tmp_path / "keys") / "auth")])
    assert set(auth.ready) == {"service", "pid", "grpc"}
    assert not auth.address("grpc").endswith(":0") and reachable(auth.address("grpc"))


def test_the_broker_reports_router_pub_and_grpc(start, tmp_path):
    broker = start("broker", ["--router", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0",
                              "--grpc-listen", "127.0.0.1:0", "--membership", "127.0.0.1:1",
                              "--data-dir", str(tmp_path), "--insecure-plaintext"])
    assert set(broker.ready) == {"service", "pid", "router", "pub", "grpc"}
    for key in ("router", "pub"):
        assert broker.address(key).startswith("tcp://127.0.0.1:"), broker.ready
        assert reachable(broker.address(key).removeprefix("tcp://")), key
    assert reachable(broker.address("grpc"))
    assert len({broker.address(key).rpartition(":")[2] for key in ("router", "pub", "grpc")}) == 3


def test_the_webgate_reports_its_url_and_serves_there(start):
    webgate = start("webgate", ["--listen", "127.0.0.1:0", "--insecure-plaintext"])
    assert set(webgate.ready) == {"service", "pid", "http"}
    url = webgate.address("http")
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
    with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
        assert response.status == 200


def test_a_ready_file_in_a_missing_directory_is_refused_before_starting(tmp_path, capsys):
    from chorus.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["webgate", "--ready-file", str(tmp_path / "missing" / "webgate.ready")], env={})
    assert exit_info.value.code == 2
    assert "--ready-file ($CHORUS_WEBGATE_READY_FILE) must be a file in an existing directory" in \
        capsys.readouterr().err
