"""Webgate settings: every flag has an environment variable, a default from Settings, and
a bad value is refused naming both."""

from __future__ import annotations

import argparse
from ipaddress import ip_network

import pytest

from chorus.webgate.config import Settings, add_arguments, settings_from_args


def settings(argv=(), env=None) -> Settings:
    env = env or {}
    parser = argparse.ArgumentParser()
    add_arguments(parser, env)
    return settings_from_args(parser.parse_args(list(argv)), env)


def test_defaults_are_the_settings_defaults():
    assert settings() == Settings()


def test_the_limits_come_from_the_environment_or_flags():
    got = settings(["--ws-messages-burst", "7"], {
        "CHORUS_WS_MESSAGES_PER_SEC": "2.5", "CHORUS_LOGIN_FAILURES_PER_IP": "3",
        "CHORUS_LOGIN_FAILURE_WINDOW_SECS": "60", "CHORUS_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
        "CHORUS_WS_MESSAGES_BURST": "99"})
    assert (got.ws_messages_per_sec, got.ws_messages_burst) == (2.5, 7), "the flag wins over the variable"
    assert (got.login_failures_per_ip, got.login_failure_window_secs) == (3, 60.0)
    assert got.trusted_proxies == (ip_network("10.0.0.0/8"), ip_network("::1"))


@pytest.mark.parametrize("var, value", [
    ("CHORUS_WS_MESSAGES_PER_SEC", "0"), ("CHORUS_WS_MESSAGES_BURST", "lots"),
    ("CHORUS_LOGIN_FAILURES_PER_IP", "-1"), ("CHORUS_TRUSTED_PROXIES", "10.0.0.0/33"),
])
def test_a_bad_value_names_the_flag_and_the_variable(var, value):
    with pytest.raises(ValueError, match=var):
        settings(env={var: value})


def test_listen_gives_host_and_port_and_port_0_is_allowed():
    got = settings(["--listen", "0.0.0.0:0"])
    assert (got.host, got.port) == ("0.0.0.0", 0)
    assert (settings(env={"CHORUS_WEBGATE_LISTEN": "[::1]:9000"}).host,
            settings(env={"CHORUS_WEBGATE_LISTEN": "[::1]:9000"}).port) == ("::1", 9000)


def test_timings_are_floats_with_flags_and_variables():
    got = settings(["--heartbeat-secs", "0.5"], {"CHORUS_WEBGATE_SHUTDOWN_GRACE_SECS": "2.5",
                                                 "CHORUS_WS_AUTH_DEADLINE_SECS": "0.75"})
    assert (got.heartbeat_secs, got.shutdown_grace_secs, got.auth_deadline_secs) == (0.5, 2.5, 0.75)


@pytest.mark.parametrize("flag, value, message", [
    ("--max-frame-bytes", "1.5", "--max-frame-bytes ($CHORUS_WS_MAX_FRAME_BYTES) must be a whole number, got '1.5'"),
    ("--broker-router", "127.0.0.1:5555", "--broker-router ($CHORUS_BROKER_ROUTER_ADDRESS) must be a ZeroMQ endpoint"),
    ("--broker-pub", "tcp://127.0.0.1:0", "--broker-pub ($CHORUS_BROKER_PUB_ADDRESS) must be a ZeroMQ endpoint to "
                                          "connect to"),
])
def test_bad_flags_are_refused_naming_flag_and_variable(flag, value, message):
    with pytest.raises(ValueError) as caught:
        settings([flag, value])
    assert str(caught.value).startswith(message)


def test_the_connection_limits_come_from_flags_and_variables_and_max_connections_may_be_none():
    got = settings(["--max-connections", "500"], {
        "CHORUS_HTTP_HEADER_TIMEOUT_SECS": "2.5", "CHORUS_MAX_SESSIONS_PER_ACCOUNT": "4",
        "CHORUS_ACCOUNT_POSTS_PER_SEC": "0.5", "CHORUS_MAX_WEBSOCKETS_PER_ADDRESS": "9"})
    assert (got.max_connections, got.header_timeout_secs, got.max_sessions_per_account) == (500, 2.5, 4)
    assert (got.account_posts_per_sec, got.max_websockets_per_address) == (0.5, 9)
    assert settings().max_connections is None, "none: derived from the open-files limit at start"
    assert settings(env={"CHORUS_MAX_CONNECTIONS": "none"}).max_connections is None
    with pytest.raises(ValueError, match=r"--max-connections \(\$CHORUS_MAX_CONNECTIONS\) must be > 0, got '0'"):
        settings(["--max-connections", "0"])
    with pytest.raises(ValueError, match=r"--max-sessions-per-account \(\$CHORUS_MAX_SESSIONS_PER_ACCOUNT\) must be"):
        settings(env={"CHORUS_MAX_SESSIONS_PER_ACCOUNT": "many"})


def test_sites_come_from_flags_grouped_by_issuer_or_from_json_in_the_environment():
    got = settings(["--site-issuer", "school", "--site-key-file", "/run/secrets/school",
                    "--site-issuer", "shop", "--site-jwks", "https://shop.example/jwks.json",
                    "--site-key-file", "/run/secrets/shop"])
    assert [(s.issuer, str(s.key_file) if s.key_file else None, s.jwks) for s in got.sites] == [
        ("school", "/run/secrets/school", None), ("shop", "/run/secrets/shop", "https://shop.example/jwks.json")]
    from_env = settings(env={"CHORUS_SITES": '[{"issuer": "school", "jwks": "/etc/school.jwks"}]'})
    assert [(s.issuer, s.jwks) for s in from_env.sites] == [("school", "/etc/school.jwks")]
    assert settings().sites == ()


@pytest.mark.parametrize("env, words", [
    ({"CHORUS_SITES": "[{"}, "must be a JSON list of sites"),
    ({"CHORUS_SITES": '[{"issuer": "school"}]'}, "site 'school' has no key"),
    ({"CHORUS_SITES": '[{"issuer": "a", "jwks": "/x"}, {"issuer": "a", "jwks": "/y"}]'}, "names an issuer twice"),
    ({"CHORUS_ALLOWED_ORIGINS": "https://ok.example,school.example"}, "must be origins"),
    ({"CHORUS_ALLOWED_ORIGINS": "https://ok.example/path"}, "must be origins"),
])
def test_bad_sites_and_origins_are_refused_naming_the_setting(env, words):
    with pytest.raises(ValueError, match=f"{list(env)[0]}.*{words}"):
        settings(env=env)


def test_a_key_flag_must_follow_its_sites_issuer(capsys):
    with pytest.raises(SystemExit):
        settings(["--site-key-file", "/run/secrets/school"])
    assert "--site-key-file must follow the --site-issuer of its site" in capsys.readouterr().err


def test_allowed_origins_are_kept_as_origins():
    assert settings(env={"CHORUS_ALLOWED_ORIGINS": "https://School.example, http://localhost:3000"}
                    ).allowed_origins == ("https://school.example", "http://localhost:3000")
