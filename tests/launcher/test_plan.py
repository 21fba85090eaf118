"""What `chorus up` runs, and where: the page on --host, everything else on --internal-host,
ports learned once and kept. No processes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from chorus.launcher.config import Settings, add_arguments, settings_from_args
from chorus.launcher.plan import (SERVICES, addresses, command, initial_ports, learned, page_url, server_names,
                                  services)


def settings_for(argv: list[str], env: dict | None = None) -> Settings:
    env = {"HOME": "/home/someone", **(env or {})}
    parser = argparse.ArgumentParser()
    add_arguments(parser, env)
    return settings_from_args(parser.parse_args(argv), env)


def flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def commands(settings: Settings) -> dict[str, list[str]]:
    ports = initial_ports(settings)
    return {name: command(name, settings, ports, "python") for name in SERVICES}


def test_by_default_everything_is_on_loopback_on_the_usual_ports():
    cmds = commands(settings_for([]))
    assert cmds["auth"][:4] == ["python", "-m", "chorus", "auth"]
    assert flag(cmds["auth"], "--listen") == "127.0.0.1:50051"
    assert flag(cmds["membership"], "--listen") == "127.0.0.1:50052"
    assert (flag(cmds["broker"], "--router"), flag(cmds["broker"], "--pub"), flag(cmds["broker"], "--grpc-listen")) \
        == ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556", "127.0.0.1:50053")
    assert flag(cmds["webgate"], "--listen") == "127.0.0.1:8080"
    assert flag(cmds["auth"], "--data-dir") == "/home/someone/.local/share/chorus"


def test_the_public_host_is_for_the_page_only():
    cmds = commands(settings_for(["--host", "0.0.0.0"]))
    assert flag(cmds["webgate"], "--listen") == "0.0.0.0:8080"
    listening = [flag(cmds["auth"], "--listen"), flag(cmds["membership"], "--listen"),
                 flag(cmds["broker"], "--router"), flag(cmds["broker"], "--pub"), flag(cmds["broker"], "--grpc-listen")]
    assert all("127.0.0.1:" in address for address in listening), listening
    assert "0.0.0.0" not in " ".join(arg for name in ("auth", "membership", "broker") for arg in cmds[name])


def test_public_host_is_another_name_for_host():
    assert settings_for(["--public-host", "192.0.2.7"]).host == "192.0.2.7"
    assert settings_for([], {"CHORUS_PUBLIC_HOST": "192.0.2.8"}).host == "192.0.2.8"
    assert settings_for([], {"CHORUS_HOST": "192.0.2.9", "CHORUS_PUBLIC_HOST": "192.0.2.8"}).host == "192.0.2.9"


def test_internal_services_on_a_wildcard_are_reached_on_loopback():
    settings = settings_for(["--internal-host", "0.0.0.0"])
    cmds = commands(settings)
    assert flag(cmds["auth"], "--listen") == "0.0.0.0:50051"
    assert flag(cmds["webgate"], "--auth") == "127.0.0.1:50051"
    assert flag(cmds["membership"], "--broker-router") == "tcp://127.0.0.1:5555"
    assert flag(cmds["webgate"], "--listen") == "127.0.0.1:8080", "the page stays where --host says"


def test_ipv6_hosts_are_bracketed():
    settings = settings_for(["--host", "::1", "--internal-host", "::1"])
    cmds = commands(settings)
    assert flag(cmds["webgate"], "--listen") == "[::1]:8080"
    assert flag(cmds["broker"], "--router") == "tcp://[::1]:5555"
    assert page_url(settings, initial_ports(settings)) == "http://[::1]:8080"


def test_port_0_is_learned_from_readiness_and_then_kept():
    settings = settings_for(["--auth-port", "0", "--broker-pub-port", "0", "--broker-grpc-port", "0",
                             "--http-port", "0"])
    ports = initial_ports(settings)
    assert flag(command("auth", settings, ports, "python"), "--listen") == "127.0.0.1:0"
    ports.update(learned("auth", {"service": "auth", "grpc": "127.0.0.1:40001"}))
    assert flag(command("webgate", settings, ports, "python"), "--auth") == "127.0.0.1:40001"
    ports.update(learned("broker", {"router": "tcp://127.0.0.1:5555", "pub": "tcp://127.0.0.1:40002",
                                    "grpc": "127.0.0.1:40003"}))
    assert flag(command("broker", settings, ports, "python"), "--pub") == "tcp://127.0.0.1:40002"
    ports.update(learned("webgate", {"http": "http://127.0.0.1:40004"}))
    assert addresses(settings, ports) == {
        "http": "http://127.0.0.1:40004", "auth": "127.0.0.1:40001", "membership": "127.0.0.1:50052",
        "broker_router": "tcp://127.0.0.1:5555", "broker_pub": "tcp://127.0.0.1:40002",
        "broker_grpc": "127.0.0.1:40003"}


def test_every_service_knows_the_others_by_the_same_ports():
    cmds = commands(settings_for([]))
    assert flag(cmds["membership"], "--broker-router") == flag(cmds["broker"], "--router") \
        == flag(cmds["webgate"], "--broker-router")
    assert flag(cmds["broker"], "--pub") == flag(cmds["webgate"], "--broker-pub")
    assert flag(cmds["broker"], "--membership") == flag(cmds["membership"], "--listen") \
        == flag(cmds["webgate"], "--membership")
    assert flag(cmds["membership"], "--auth") == flag(cmds["auth"], "--listen") == flag(cmds["webgate"], "--auth"), \
        "membership asks auth which accounts exist"


@pytest.mark.parametrize("argv, words", [
    (["--broker-router-port", "0"], "--broker-router-port ($CHORUS_BROKER_ROUTER_PORT) must be a fixed port"),
    (["--http-port", "5555"], "every service needs its own port"),
    (["--http-port", "65536"], "--http-port ($CHORUS_HTTP_PORT): port 65536 is out of range 0-65535"),
    (["--restart-limit", "1.5"], "--restart-limit ($CHORUS_RESTART_LIMIT) must be a whole number, got '1.5'"),
    (["--restart-backoff-secs", "0"], "--restart-backoff-secs ($CHORUS_RESTART_BACKOFF_SECS) must be > 0"),
])
def test_bad_settings_name_the_flag_and_variable(argv, words):
    with pytest.raises(ValueError) as caught:
        settings_for(argv)
    assert words in str(caught.value)


def test_several_ports_may_be_0():
    settings = settings_for(["--http-port", "0", "--auth-port", "0", "--broker-grpc-port", "0"])
    assert (settings.http_port, settings.auth_port, settings.broker_grpc_port) == (0, 0, 0)


def test_supervision_settings_from_flags_or_environment():
    settings = settings_for(["--restart-limit", "2"], {"CHORUS_RESTART_WINDOW_SECS": "30.5",
                                                      "CHORUS_RESTART_BACKOFF_SECS": "0.25"})
    assert (settings.restart_limit, settings.restart_window_secs, settings.restart_backoff_secs) == (2, 30.5, 0.25)
    assert settings.data_dir == Path("/home/someone/.local/share/chorus")


def test_sites_and_allowed_origins_are_passed_to_the_page_alone():
    cmds = commands(settings_for(["--site-issuer", "school", "--site-key-file", "/s/school",
                                  "--site-issuer", "shop", "--site-jwks", "https://shop.example/jwks.json",
                                  "--allowed-origins", "https://school.example,https://shop.example"]))
    webgate = cmds["webgate"]
    tail = webgate[webgate.index("--site-issuer"):]
    assert tail == ["--site-issuer", "school", "--site-key-file", "/s/school",
                    "--site-issuer", "shop", "--site-jwks", "https://shop.example/jwks.json",
                    "--allowed-origins", "https://school.example,https://shop.example"]
    assert not any("--site-issuer" in cmd for name, cmd in cmds.items() if name != "webgate")
    assert "--site-issuer" not in commands(settings_for([]))["webgate"]


def test_brokers_3_runs_a_cluster_that_membership_and_webgate_find_through_every_router():
    settings = settings_for(["--brokers", "3", "--database-url", "postgresql://chorus@db/chorus"])
    ports = initial_ports(settings)
    names = services(settings)
    assert names == ["auth", "membership", "broker", "broker-2", "broker-3", "webgate"]
    cmds = {name: command(name, settings, ports, "python") for name in names}
    routers = [flag(cmds[b], "--router") for b in ("broker", "broker-2", "broker-3")]
    assert routers == ["tcp://127.0.0.1:5555", "tcp://127.0.0.1:5655", "tcp://127.0.0.1:5755"]
    assert [flag(cmds[b], "--cluster-node") for b in ("broker", "broker-2", "broker-3")] == \
        ["broker-1", "broker-2", "broker-3"]
    assert flag(cmds["membership"], "--broker-seeds") == flag(cmds["webgate"], "--broker-seeds") == ",".join(routers)
    assert "--broker-router" not in cmds["webgate"] and "--broker-pub" not in cmds["webgate"]
    learned_ports = learned("broker-2", {"router": "tcp://127.0.0.1:5655", "pub": "tcp://127.0.0.1:40001",
                                         "grpc": "127.0.0.1:40002"})
    assert learned_ports == {"broker_router_port@2": 5655, "broker_pub_port@2": 40001, "broker_grpc_port@2": 40002}


def test_one_broker_is_the_default_and_is_no_cluster():
    settings = settings_for([])
    assert services(settings) == list(SERVICES)
    assert "--cluster-node" not in command("broker", settings, initial_ports(settings), "python")


@pytest.mark.parametrize("database", ["", "sqlite:////tmp/x.db"])
def test_more_than_one_broker_without_postgresql_is_refused_naming_what_to_give(database):
    argv = ["--brokers", "2"] + (["--database-url", database] if database else [])
    with pytest.raises(ValueError, match="--brokers 2: a cluster of brokers shares one PostgreSQL database"):
        settings_for(argv)


def test_each_service_gets_only_its_own_keys_folder():
    settings = settings_for(["--data-dir", "/srv/chorus"])
    cmds = commands(settings)
    folders = {name: flag(cmds[name], "--keys-dir") for name in SERVICES}
    assert folders == {"auth": "/srv/chorus/keys/auth", "membership": "/srv/chorus/keys/membership",
                       "broker": "/srv/chorus/keys/broker", "webgate": "/srv/chorus/keys/gateway"}


def test_the_grpc_certificates_name_the_internal_address_only_when_it_is_not_loopback():
    assert server_names(settings_for([])) == []
    assert server_names(settings_for(["--internal-host", "0.0.0.0"])) == [], "reached on 127.0.0.1"
    assert server_names(settings_for(["--internal-host", "::"])) == [], "reached on ::1"
    assert server_names(settings_for(["--internal-host", "10.1.2.3"])) == ["10.1.2.3"]
    assert server_names(settings_for(["--internal-host", "chorus.lan"])) == ["chorus.lan"]
