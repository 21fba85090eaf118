"""Broker flags and environment -> Settings, with the documented precedence and errors."""

from __future__ import annotations

import argparse

import pytest

from chorus.broker.config import Settings, add_arguments, settings_from_args


def settings_for(argv: list[str], env: dict[str, str]) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser, env)
    return settings_from_args(parser.parse_args(argv), env)


def test_only_a_data_dir_gives_sqlite_there_and_every_default(tmp_path):
    settings = settings_for(["--data-dir", str(tmp_path / "d")], {"HOME": str(tmp_path)})
    assert settings == Settings(database_url=f"sqlite:///{tmp_path / 'd' / 'broker.db'}")
    assert (tmp_path / "d").is_dir()
    assert (settings.grpc_listen, settings.membership_address, settings.max_history_page,
            settings.durable_sync) == ("127.0.0.1:50053", "127.0.0.1:50052", 100, False)


def test_database_url_precedence_flag_then_broker_env_then_shared_env(tmp_path):
    env = {"HOME": str(tmp_path), "DATABASE_URL": "postgresql://shared/db"}
    assert settings_for([], env).database_url == "postgresql://shared/db"
    env["CHORUS_BROKER_DATABASE_URL"] = "postgresql://broker/db"
    assert settings_for([], env).database_url == "postgresql://broker/db"
    assert settings_for(["--database-url", "sqlite:///x.db"], env).database_url == "sqlite:///x.db"
    data = {"HOME": str(tmp_path), "CHORUS_DATA_DIR": str(tmp_path / "env-dir")}
    assert settings_for([], data).database_url == f"sqlite:///{tmp_path / 'env-dir' / 'broker.db'}"


def test_help_never_shows_the_database_password(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser, {"HOME": str(tmp_path), "DATABASE_URL": "postgresql://u:s3cret@h/db"})
    assert "s3cret" not in parser.format_help()


@pytest.mark.parametrize("argv, env, expected", [
    ([], {}, False),
    (["--durable-sync"], {}, True),
    ([], {"CHORUS_BROKER_DURABLE_SYNC": "true"}, True),
    ([], {"CHORUS_BROKER_DURABLE_SYNC": "0"}, False),
])
def test_durable_sync_from_flag_or_env(tmp_path, argv, env, expected):
    settings = settings_for(["--data-dir", str(tmp_path), *argv], {"HOME": str(tmp_path), **env})
    assert settings.durable_sync is expected


def test_grpc_and_membership_addresses_and_history_page(tmp_path):
    env = {"HOME": str(tmp_path), "CHORUS_BROKER_GRPC_LISTEN": "0.0.0.0:7000",
           "CHORUS_MEMBERSHIP_ADDRESS": "members:50052"}
    settings = settings_for(["--data-dir", str(tmp_path), "--max-history-page", "20"], env)
    assert (settings.grpc_listen, settings.membership_address, settings.max_history_page) == (
        "0.0.0.0:7000", "members:50052", 20)


@pytest.mark.parametrize("argv, env, named", [
    (["--grpc-listen", "nope"], {}, "--grpc-listen ($CHORUS_BROKER_GRPC_LISTEN)"),
    ([], {"CHORUS_MEMBERSHIP_ADDRESS": "host-only"}, "--membership ($CHORUS_MEMBERSHIP_ADDRESS)"),
    (["--max-history-page", "0"], {}, "--max-history-page ($CHORUS_BROKER_MAX_HISTORY_PAGE)"),
    ([], {"CHORUS_BROKER_DURABLE_SYNC": "maybe"}, "--durable-sync ($CHORUS_BROKER_DURABLE_SYNC)"),
    (["--router", "127.0.0.1:5555"], {}, "--router ($CHORUS_BROKER_ROUTER)"),
])
def test_bad_values_name_the_flag_and_the_variable(tmp_path, argv, env, named):
    with pytest.raises(ValueError) as caught:
        settings_for(["--data-dir", str(tmp_path), *argv], {"HOME": str(tmp_path), **env})
    assert named in str(caught.value)


def test_loop_timing_and_grpc_settings_have_flags_and_variables(tmp_path):
    env = {"HOME": str(tmp_path), "CHORUS_BROKER_TICK_SECS": "0.25", "CHORUS_BACKEND_TIMEOUT_SECS": "1.5"}
    settings = settings_for(["--data-dir", str(tmp_path), "--max-workers", "2", "--grace-secs", "0.5",
                             "--gateway-timeout-secs", "2.5"], env)
    assert (settings.tick_secs, settings.backend_timeout_secs, settings.max_workers, settings.grace_secs,
            settings.gateway_timeout_secs) == (0.25, 1.5, 2, 0.5, 2.5)


def test_port_0_endpoints_are_accepted_for_binding(tmp_path):
    settings = settings_for(["--data-dir", str(tmp_path), "--router", "tcp://127.0.0.1:0",
                             "--pub", "tcp://127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"], {"HOME": str(tmp_path)})
    assert (settings.router_endpoint, settings.pub_endpoint, settings.grpc_listen) == (
        "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "127.0.0.1:0")
