"""The settings loader: a table in, typed frozen values out, and errors that say where to look."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Annotated

import pytest

from chorus.common.config import OptionalConnectEndpoint, PositiveFloat, PositiveInt
from chorus.common.settings import Row, Setting, SettingsError, add_flags, read, table


@dataclasses.dataclass(frozen=True, kw_only=True)
class Example:
    derived: str = "not from a flag"
    count: Annotated[PositiveInt, Setting("--count", "EX_COUNT", "how many")] = 3
    wait_secs: Annotated[PositiveFloat, Setting("--wait-secs", ("EX_WAIT_SECS", "EX_OLD_WAIT"), "how long")] = 1.5
    loud: Annotated[bool, Setting(("--loud", "--noisy"), "EX_LOUD", "shout", switch=True)] = False
    peer: Annotated[OptionalConnectEndpoint, Setting("--peer", "EX_PEER", "where to")] = "tcp://127.0.0.1:1"


PASSWORD = Row("password", str | None, None, Setting(None, "EX_PASSWORD", "the password", secret=True))
URL = Row("url", PositiveInt, 1, Setting("--url", "EX_URL", "a secret number", secret=True))
TABLE = table(Example, PASSWORD, URL)


def load(argv=(), env=None) -> dict:
    parser = argparse.ArgumentParser()
    add_flags(parser, TABLE)
    return read(TABLE, parser.parse_args(list(argv)), env or {})


def error(argv=(), env=None) -> str:
    with pytest.raises(SettingsError) as caught:
        load(argv, env)
    return str(caught.value)


def test_only_annotated_fields_are_settings():
    assert [row.name for row in TABLE] == ["count", "wait_secs", "loud", "peer", "password", "url"]


def test_defaults_when_nothing_is_given():
    assert load() == {"count": 3, "wait_secs": 1.5, "loud": False, "peer": "tcp://127.0.0.1:1",
                      "password": None, "url": 1}
    assert Example(**{k: v for k, v in load().items() if k in ("count", "wait_secs", "loud", "peer")}) == Example()


def test_the_flag_wins_over_the_variable_which_wins_over_the_default():
    assert load(["--count", "7"], {"EX_COUNT": "9"})["count"] == 7
    assert load([], {"EX_COUNT": "9"})["count"] == 9


def test_the_first_variable_set_and_not_empty_wins():
    assert load([], {"EX_WAIT_SECS": "2", "EX_OLD_WAIT": "4"})["wait_secs"] == 2.0
    assert load([], {"EX_WAIT_SECS": "", "EX_OLD_WAIT": "4"})["wait_secs"] == 4.0
    assert load([], {"EX_OLD_WAIT": "4"})["wait_secs"] == 4.0


def test_an_empty_variable_is_a_value_of_its_own():
    assert load([], {"EX_PEER": ""})["peer"] is None, "empty turns an optional endpoint off"
    assert error([], {"EX_COUNT": ""}) == "--count ($EX_COUNT) must be a number, got ''"


@pytest.mark.parametrize("given, expected", [("0.5", 0.5), ("2.9", 2.9), ("1e-3", 0.001), ("4", 4.0)])
def test_floats_keep_their_fraction(given, expected):
    value = load(["--wait-secs", given])["wait_secs"]
    assert value == expected and isinstance(value, float)


@pytest.mark.parametrize("given, message", [
    ("2.9", "--count ($EX_COUNT) must be a whole number, got '2.9'"),
    ("0", "--count ($EX_COUNT) must be > 0, got '0'"),
    ("-4", "--count ($EX_COUNT) must be > 0, got '-4'"),
    ("many", "--count ($EX_COUNT) must be a number, got 'many'"),
])
def test_ints_refuse_fractions_and_say_why(given, message):
    assert error(["--count", given]) == message
    assert error([], {"EX_COUNT": given}) == message


@pytest.mark.parametrize("given", ["0", "-0.5", "nan", "inf", "soon"])
def test_floats_must_be_finite_and_positive(given):
    assert error(["--wait-secs", given]).startswith("--wait-secs ($EX_WAIT_SECS) must be ")


@pytest.mark.parametrize("given, expected", [("true", True), ("1", True), ("YES", True), ("on", True),
                                             ("false", False), ("0", False), ("No", False), ("off", False)])
def test_booleans_from_the_environment(given, expected):
    assert load([], {"EX_LOUD": given})["loud"] is expected


@pytest.mark.parametrize("given", ["maybe", "2", "", "truthy"])
def test_booleans_are_parsed_strictly(given):
    assert error([], {"EX_LOUD": given}) == f"--loud ($EX_LOUD) must be true or false, got {given!r}"


def test_a_switch_flag_means_true_under_every_spelling():
    assert load(["--loud"], {"EX_LOUD": "false"})["loud"] is True
    assert load(["--noisy"])["loud"] is True


def test_a_secret_is_never_shown_in_an_error():
    message = error(["--url", "hunter2"])
    assert message == "--url ($EX_URL) must be a number" and "hunter2" not in message


def test_help_names_each_flag_variable_and_default_but_no_secret():
    parser = argparse.ArgumentParser()
    add_flags(parser, TABLE)
    shown = " ".join(parser.format_help().split())
    assert "--wait-secs WAIT_SECS how long (env EX_WAIT_SECS or EX_OLD_WAIT; default 1.5)" in shown
    assert "--loud, --noisy shout (env EX_LOUD; default false)" in shown
    assert "--url URL a secret number (env EX_URL; default not shown)" in shown
    assert "environment only (a flag would show it in ps): EX_PASSWORD: the password" in shown
    assert "--password" not in shown


def test_an_env_only_secret_comes_from_its_variable():
    assert load([], {"EX_PASSWORD": "s3cret"})["password"] == "s3cret"
