"""The `chorus` command refuses bad configuration with a message that names the problem."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chorus.cli import main


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
