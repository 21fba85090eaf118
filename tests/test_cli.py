"""The `chorus` command refuses bad configuration with a message that names the problem."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
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
    (["health", "grpc", "127.0.0.1:1", "--timeout-secs", "0"],
     "--timeout-secs ($CHORUS_HEALTH_TIMEOUT_SECS) must be > 0, got '0'"),
    (["health", "grpc", "127.0.0.1:1", "--timeout-secs", "nan"],
     "--timeout-secs ($CHORUS_HEALTH_TIMEOUT_SECS) must be a finite number, got 'nan'"),
    (["webgate", "--max-frame-bytes", "2.9"],
     "--max-frame-bytes ($CHORUS_WS_MAX_FRAME_BYTES) must be a whole number, got '2.9'"),
    (["up", "--broker-router-port", "0"], "--broker-router-port ($CHORUS_BROKER_ROUTER_PORT) must be a fixed port"),
    (["up", "--host", ""], "--host ($CHORUS_HOST)"),
])
def test_bad_configuration_is_refused_with_a_clear_message(argv, words, capsys, tmp_path):
    env = {"HOME": str(tmp_path)}
    with pytest.raises(SystemExit) as exit_info:
        main(argv, env=env)
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("var, value, words", [
    ("CHORUS_BROKER_DURABLE_SYNC", "maybe", "--durable-sync ($CHORUS_BROKER_DURABLE_SYNC) must be true or false, "
                                           "got 'maybe'"),
    ("CHORUS_GATEWAY_TIMEOUT_SECS", "inf", "--gateway-timeout-secs ($CHORUS_GATEWAY_TIMEOUT_SECS) must be a finite"),
    ("CHORUS_BROKER_PUB_HWM", "1.5", "--pub-hwm-msgs ($CHORUS_BROKER_PUB_HWM) must be a whole number, got '1.5'"),
])
def test_a_bad_environment_value_is_refused_like_a_bad_flag(var, value, words, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["broker"], env={"HOME": str(tmp_path), var: value})
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("given, secs", [("0.5", 0.5), ("2.9", 2.9), ("3", 3.0)])
def test_the_health_timeout_is_a_number_of_seconds_fractions_included(given, secs):
    from chorus.cli import build_parser
    from chorus.healthcheck import settings_from_args

    for argv, env in [(["--timeout-secs", given], {}), ([], {"CHORUS_HEALTH_TIMEOUT_SECS": given})]:
        probe = settings_from_args(build_parser(env).parse_args(["health", "grpc", "127.0.0.1:1", *argv]), env)
        assert probe.timeout_secs == secs


def test_help_names_each_variable_and_default_and_no_secret(capsys):
    env = {"CHORUS_TOKEN_KEY": "k" * 40, "DATABASE_URL": "postgresql://app:hunter2@db/chorus"}
    with pytest.raises(SystemExit):
        main(["auth", "--help"], env=env)
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--token-ttl-secs" in shown and "(env CHORUS_TOKEN_TTL_SECS; default 604800)" in shown
    assert "(env CHORUS_AUTH_DATABASE_URL or DATABASE_URL; default not shown)" in shown
    assert "environment only (a flag would show it in ps): CHORUS_TOKEN_KEY" in shown
    assert "hunter2" not in shown and "k" * 40 not in shown


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
                             "--data-dir", str(tmp_path), "--insecure-plaintext"],
                            capture_output=True, text=True, timeout=30)
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
    assert (f"--database-password-file ($CHORUS_DATABASE_PASSWORD_FILE): cannot read {tmp_path / 'missing'}"
            in capsys.readouterr().err)


def test_the_database_password_comes_from_its_file_not_the_url(tmp_path):
    (tmp_path / "db_password").write_text("s3cret/with@odd:chars\n")
    password_file = tmp_path / "db_password"
    url = resolve_database_url("postgresql://chorus@db:5432/chorus", None, password_file, {}, "auth")
    assert make_url(url).password == "s3cret/with@odd:chars"
    assert (make_url(url).host, make_url(url).database) == ("db", "chorus")
    # SQLite has no password; the embedded default ignores the file
    assert resolve_database_url(None, tmp_path, password_file, {}, "auth").startswith("sqlite:///")


def test_health_probe_tells_a_serving_service_from_a_closed_port(stack):
    def probe(*argv):
        return subprocess.run([sys.executable, "-m", "chorus", "health", *argv],
                              capture_output=True, text=True, timeout=30)

    # each with the service's own keys folder, as its container's HEALTHCHECK does
    for target, keys in [(f"127.0.0.1:{stack.ports['auth']}", "auth"),
                         (f"127.0.0.1:{stack.ports['membership']}", "membership"),
                         (f"127.0.0.1:{stack.ports['broker-grpc']}", "broker")]:
        answer = probe("grpc", target, "--keys-dir", str(stack.keys / keys))
        assert answer.returncode == 0, (target, answer.stderr)
        without_a_certificate = probe("grpc", target, "--insecure-plaintext", "--timeout-secs", "1")
        assert without_a_certificate.returncode == 1 and "unhealthy" in without_a_certificate.stderr
    assert probe("http", f"{stack.base_url}/healthz").returncode == 0
    nowhere = probe("grpc", f"127.0.0.1:{stack.ports['auth']}")
    assert nowhere.returncode == 2 and "--keys-dir is needed" in nowhere.stderr
    with socket.socket() as held:  # bound, never listening: connections to it are refused
        held.bind(("127.0.0.1", 0))
        closed = probe("grpc", f"127.0.0.1:{held.getsockname()[1]}", "--timeout-secs", "0.5",
                       "--keys-dir", str(stack.keys / "auth"))
    assert closed.returncode == 1 and "unhealthy" in closed.stderr
    missing = probe("http", f"{stack.base_url}/no-such-page")
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr


def test_webgate_refuses_to_start_with_a_site_key_it_cannot_use(tmp_path):
    short = tmp_path / "school.key"
    short.write_text("short\n")
    for key_flags, words in ((["--site-key-file", str(short)], "site 'school': the HS256 secret"),
                             (["--site-key-file", str(tmp_path / "missing")], "site 'school': cannot read its key file")):
        result = subprocess.run([sys.executable, "-m", "chorus", "webgate", "--insecure-plaintext", "--listen",
                                 "127.0.0.1:0", "--site-issuer", "school", *key_flags],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and words in result.stderr, result.stderr
