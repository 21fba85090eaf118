"""The `chorus` command refuses bad configuration with a message that names the problem."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import free_port
from sqlalchemy.engine import make_url

from chorus.cli import main
from chorus.common.config import resolve_database_url


@pytest.mark.parametrize("argv, words", [
    (["webgate", "--listen", "nonsense"], "--listen ($CHORUS_WEBGATE_LISTEN) must look like HOST:PORT"),
    (["webgate", "--listen", "127.0.0.1:99999"], "out of range"),
    (["webgate", "--max-text-chars", "0"], "--max-text-chars ($CHORUS_MAX_TEXT_CHARS) must be > 0"),
    (["webgate", "--auth-deadline-secs", "soon"], "--auth-deadline-secs ($CHORUS_WS_AUTH_DEADLINE_SECS) must be a number"),
    (["broker", "--router", "localhost:5555"], "--router ($CHORUS_BROKER_ROUTER) must be a ZeroMQ endpoint"),
    (["broker", "--gateway-timeout-secs", "-1"], "--gateway-timeout-secs ($CHORUS_GATEWAY_TIMEOUT_SECS) must be > 0"),
    (["up", "--http-port", "5555"], "two of the port flags are equal"),
    (["up", "--auth-port", "70000"], "out of range"),
    (["auth"], "no token signing key"),
    (["health", "http", "127.0.0.1:8080"], "target '127.0.0.1:8080' is not an http:// or https:// URL"),
    (["health", "grpc", "somewhere"], "target must look like HOST:PORT"),
])
def test_bad_configuration_is_refused_with_a_clear_message(argv, words, capsys, tmp_path):
    env = {"HOME": str(tmp_path)}
    with pytest.raises(SystemExit) as exit_info:
        main(argv, env=env)
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err


def test_environment_variables_configure_the_same_as_flags(capsys):
    with pytest.raises(SystemExit):
        main(["webgate", "--help"], env={"CHORUS_WEBGATE_LISTEN": "0.0.0.0:9999"})
    assert "0.0.0.0:9999" not in capsys.readouterr().out, "help shows defaults, not secrets or env"
    with pytest.raises(SystemExit) as exit_info:
        main(["webgate"], env={"CHORUS_WEBGATE_LISTEN": "bad"})
    assert exit_info.value.code == 2
    assert "--listen ($CHORUS_WEBGATE_LISTEN) must look like HOST:PORT, got 'bad'" in capsys.readouterr().err


def test_an_unknown_command_lists_the_real_ones():
    result = subprocess.run([sys.executable, "-m", "chorus", "fly"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice: 'fly'" in result.stderr and "webgate" in result.stderr


def test_broker_refuses_an_endpoint_it_cannot_bind(tmp_path):
    result = subprocess.run([sys.executable, "-m", "chorus", "broker", "--router", "tcp://10.255.255.1:5555",
                             "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "broker: cannot bind tcp://10.255.255.1:5555" in result.stderr


@pytest.mark.parametrize("service", ["auth", "membership", "broker"])
def test_an_unreadable_database_password_file_is_named(service, capsys, tmp_path):
    env = {"HOME": str(tmp_path), "CHORUS_TOKEN_KEY": "k" * 32,
           "DATABASE_URL": "postgresql://chorus@db/chorus",
           "CHORUS_DATABASE_PASSWORD_FILE": str(tmp_path / "missing")}
    with pytest.raises(SystemExit) as exit_info:
        main([service], env=env)
    assert exit_info.value.code == 2
    assert f"$CHORUS_DATABASE_PASSWORD_FILE: cannot read {tmp_path / 'missing'}" in capsys.readouterr().err


def test_the_database_password_comes_from_its_file_not_the_url(tmp_path):
    (tmp_path / "db_password").write_text("s3cret/with@odd:chars\n")
    env = {"CHORUS_DATABASE_PASSWORD_FILE": str(tmp_path / "db_password")}
    url = resolve_database_url("postgresql://chorus@db:5432/chorus", None, env, "auth")
    assert make_url(url).password == "s3cret/with@odd:chars"
    assert (make_url(url).host, make_url(url).database) == ("db", "chorus")
    # SQLite has no password; the embedded default ignores the file
    assert resolve_database_url(None, str(tmp_path), env, "auth").startswith("sqlite:///")


def test_health_probe_tells_a_serving_service_from_a_closed_port(stack):
    def probe(*argv):
        return subprocess.run([sys.executable, "-m", "chorus", "health", *argv],
                              capture_output=True, text=True, timeout=30)

    for kind, target in [("grpc", f"127.0.0.1:{stack.ports['auth']}"),
                         ("grpc", f"127.0.0.1:{stack.ports['membership']}"),
                         ("grpc", f"127.0.0.1:{stack.ports['broker-grpc']}"),
                         ("http", f"{stack.base_url}/healthz")]:
        assert probe(kind, target).returncode == 0, target
    closed = probe("grpc", f"127.0.0.1:{free_port()}", "--timeout-secs", "1")
    assert closed.returncode == 1 and "unhealthy" in closed.stderr
    missing = probe("http", f"{stack.base_url}/no-such-page")
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr
