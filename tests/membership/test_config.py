"""Flags and environment -> Settings, with the documented precedence and error messages."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from chorus.membership.config import Settings, add_arguments, settings_from_args


def settings_for(argv: list[str], env: dict[str, str]) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser, env)
    return settings_from_args(parser.parse_args(argv), env)


@pytest.fixture
def home(tmp_path):
    return {"HOME": str(tmp_path)}


def test_defaults_use_sqlite_in_the_users_data_dir(home, tmp_path):
    settings = settings_for([], home)
    expected_db = tmp_path / ".local" / "share" / "chorus" / "membership.db"
    assert settings == Settings(database_url=f"sqlite:///{expected_db}")
    assert (settings.listen, settings.max_members_per_group, settings.max_groups_per_account) == (
        "127.0.0.1:50052",
        10_000,
        500,
    )
    assert (settings.max_workers, settings.grace_secs) == (16, 5)
    assert expected_db.parent.is_dir()


def test_data_dir_from_environment_or_flag(home, tmp_path):
    from_env = settings_for([], {**home, "CHORUS_DATA_DIR": str(tmp_path / "env")})
    assert from_env.database_url == f"sqlite:///{tmp_path / 'env' / 'membership.db'}"
    argv = ["--data-dir", str(tmp_path / "flag")]
    from_flag = settings_for(argv, {**home, "CHORUS_DATA_DIR": str(tmp_path / "ignored")})
    assert from_flag.database_url == f"sqlite:///{tmp_path / 'flag' / 'membership.db'}"


@pytest.mark.parametrize(
    ("env", "argv", "expected"),
    [
        ({"DATABASE_URL": "postgresql://shared/db"}, [], "postgresql://shared/db"),
        (
            {"DATABASE_URL": "postgresql://shared/db", "CHORUS_MEMBERSHIP_DATABASE_URL": "postgresql://own/db"},
            [],
            "postgresql://own/db",
        ),
        (
            {"CHORUS_MEMBERSHIP_DATABASE_URL": "postgresql://own/db"},
            ["--database-url", "sqlite:///x.db"],
            "sqlite:///x.db",
        ),
    ],
)
def test_database_url_precedence(home, env, argv, expected):
    assert settings_for(argv, {**home, **env}).database_url == expected


def test_help_never_shows_the_database_password(home, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser, {**home, "DATABASE_URL": "postgresql://app:hunter2@db/chorus"})
    parser.print_help()
    assert "hunter2" not in capsys.readouterr().out


def test_values_come_from_the_environment(home):
    settings = settings_for(
        [],
        {
            **home,
            "CHORUS_MEMBERSHIP_LISTEN": "0.0.0.0:6000",
            "CHORUS_MAX_MEMBERS_PER_GROUP": "50",
            "CHORUS_MAX_GROUPS_PER_ACCOUNT": "7",
            "DATABASE_URL": "sqlite:///x.db",
        },
    )
    assert (settings.listen, settings.max_members_per_group, settings.max_groups_per_account) == (
        "0.0.0.0:6000",
        50,
        7,
    )


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--listen", "nowhere"], {}, "--listen"),
        ([], {"CHORUS_MEMBERSHIP_LISTEN": "127.0.0.1:99999"}, "CHORUS_MEMBERSHIP_LISTEN"),
        (["--max-members-per-group", "0"], {}, "--max-members-per-group"),
        ([], {"CHORUS_MAX_GROUPS_PER_ACCOUNT": "many"}, "CHORUS_MAX_GROUPS_PER_ACCOUNT"),
    ],
)
def test_bad_values_name_the_flag_or_variable(home, argv, env, message):
    with pytest.raises(ValueError, match=message.replace("$", r"\$")):
        settings_for(argv, {**home, "DATABASE_URL": "sqlite:///x.db", **env})


def test_the_broker_is_told_by_default_on_its_default_endpoint(home):
    settings = settings_for([], home)
    assert (settings.broker_router, settings.broker_max_queued_changes) == ("tcp://127.0.0.1:5555", 10_000)


def test_the_broker_endpoint_from_the_environment_or_flag(home):
    env = {**home, "CHORUS_BROKER_ROUTER_ADDRESS": "tcp://broker:7000",
           "CHORUS_MEMBERSHIP_BROKER_MAX_QUEUED_CHANGES": "5"}
    settings = settings_for([], env)
    assert (settings.broker_router, settings.broker_max_queued_changes) == ("tcp://broker:7000", 5)
    assert settings_for(["--broker-router", "ipc:///run/broker"], env).broker_router == "ipc:///run/broker"


@pytest.mark.parametrize("off", ["none", "NONE", "", "  "])
def test_none_or_empty_turns_broker_notifications_off(home, off):
    assert settings_for(["--broker-router", off], home).broker_router is None
    assert settings_for([], {**home, "CHORUS_BROKER_ROUTER_ADDRESS": off}).broker_router is None


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--broker-router", "127.0.0.1:5555"], {}, r"--broker-router \(\$CHORUS_BROKER_ROUTER_ADDRESS\)"),
        ([], {"CHORUS_BROKER_ROUTER_ADDRESS": "http://broker"}, "CHORUS_BROKER_ROUTER_ADDRESS"),
        ([], {"CHORUS_BROKER_ROUTER_ADDRESS": "tcp://127.0.0.1:0"}, "connect to"),
        (["--broker-max-queued-changes", "0"], {}, "--broker-max-queued-changes"),
        ([], {"CHORUS_MEMBERSHIP_BROKER_MAX_QUEUED_CHANGES": "lots"}, "CHORUS_MEMBERSHIP_BROKER_MAX_QUEUED_CHANGES"),
    ],
)
def test_bad_broker_settings_name_the_flag_and_variable(home, argv, env, message):
    with pytest.raises(ValueError, match=message):
        settings_for(argv, {**home, "DATABASE_URL": "sqlite:///x.db", **env})


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings(database_url="sqlite:///x.db").listen = "elsewhere"  # type: ignore[misc]


def test_workers_grace_and_flush_have_flags_and_variables(home):
    by_flags = settings_for(["--max-workers", "3", "--grace-secs", "1.5", "--broker-flush-secs", "0.25"], home)
    by_env = settings_for([], {**home, "CHORUS_MEMBERSHIP_MAX_WORKERS": "3", "CHORUS_MEMBERSHIP_GRACE_SECS": "1.5",
                               "CHORUS_MEMBERSHIP_BROKER_FLUSH_SECS": "0.25"})
    for settings in (by_flags, by_env):
        assert (settings.max_workers, settings.grace_secs, settings.broker_flush_secs) == (3, 1.5, 0.25)


@pytest.mark.parametrize("argv, message", [
    (["--max-members-per-group", "2.5"],
     "--max-members-per-group ($CHORUS_MAX_MEMBERS_PER_GROUP) must be a whole number, got '2.5'"),
    (["--broker-flush-secs", "0"], "--broker-flush-secs ($CHORUS_MEMBERSHIP_BROKER_FLUSH_SECS) must be > 0, got '0'"),
])
def test_fractions_and_zeros_are_refused_naming_flag_and_variable(home, argv, message):
    with pytest.raises(ValueError) as caught:
        settings_for(argv, {**home, "DATABASE_URL": "sqlite:///x.db"})
    assert str(caught.value) == message


def test_the_auth_service_to_ask_comes_from_the_flag_or_the_shared_variable(home):
    assert settings_for([], home).auth_address == "127.0.0.1:50051"
    assert settings_for([], {**home, "CHORUS_AUTH_ADDRESS": "auth:50051"}).auth_address == "auth:50051"
    assert settings_for(["--auth", "10.0.0.2:7000", "--auth-timeout-secs", "0.5"], home).auth_timeout_secs == 0.5
    with pytest.raises(ValueError, match=r"--auth \(\$CHORUS_AUTH_ADDRESS\) must look like HOST:PORT"):
        settings_for(["--auth", "nowhere"], home)
    with pytest.raises(ValueError, match="--auth-timeout-secs"):
        settings_for(["--auth-timeout-secs", "0"], home)
