"""The pure input rules: names, name keys, ids, page sizes; plus the error texts people see."""

from __future__ import annotations

import pytest

from chorus.membership.errors import (
    CallerError,
    GroupFull,
    InvalidInput,
    LimitReached,
    MembershipError,
    TooManyGroups,
)
from chorus.membership.validation import (
    MAX_GROUP_NAME_CHARS,
    MAX_ID_CHARS,
    check_id,
    group_name,
    name_key,
    page_size,
)


def test_group_name_is_stripped():
    assert group_name("  General chat \n") == "General chat"


def test_group_name_length_is_counted_after_stripping():
    longest = "x" * MAX_GROUP_NAME_CHARS
    assert group_name(f"   {longest}   ") == longest


@pytest.mark.parametrize("raw", ["", " ", "\t\n "])
def test_blank_group_name_is_rejected(raw):
    with pytest.raises(InvalidInput, match="must not be empty"):
        group_name(raw)


def test_too_long_group_name_is_rejected():
    with pytest.raises(InvalidInput, match=f"at most {MAX_GROUP_NAME_CHARS} characters, got 65"):
        group_name("x" * (MAX_GROUP_NAME_CHARS + 1))


@pytest.mark.parametrize("raw", ["a\x00b", "line\nbreak", "tab\there", "del\x7f", "esc\x1b[31m"])
def test_control_characters_in_group_name_are_rejected(raw):
    with pytest.raises(InvalidInput, match="control characters"):
        group_name(raw)


@pytest.mark.parametrize("raw", ["Café ☕", "famille 👨\u200d👩\u200d👧", "日本語", "a - b_c.d"])
def test_ordinary_unicode_names_are_accepted(raw):
    assert group_name(raw) == raw


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("General", "GENERAL"),
        ("general", "gEnErAl"),
        ("straße", "STRASSE"),
        ("caf\u00e9", "cafe\u0301"),  # precomposed vs combining accent
    ],
)
def test_names_differing_only_in_case_or_composition_share_a_key(a, b):
    assert name_key(a) == name_key(b)


def test_different_names_have_different_keys():
    assert name_key("general") != name_key("generals")


def test_valid_id_is_returned_unchanged():
    assert check_id("u_0123abcd", field="account_id") == "u_0123abcd"
    assert check_id("x" * MAX_ID_CHARS, field="account_id") == "x" * MAX_ID_CHARS


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "must not be empty"),
        ("x" * (MAX_ID_CHARS + 1), f"at most {MAX_ID_CHARS} characters"),
        ("a\x00b", "printable"),
        ("a\nb", "printable"),
    ],
)
def test_bad_ids_are_rejected_naming_the_field(raw, problem):
    with pytest.raises(InvalidInput, match=problem) as caught:
        check_id(raw, field="group_id")
    assert str(caught.value).startswith("group_id ")


@pytest.mark.parametrize(
    ("requested", "expected"), [(0, 200), (1, 1), (200, 200), (1000, 1000), (5000, 1000)]
)
def test_page_size_defaults_and_caps(requested, expected):
    assert page_size(requested, default=200, maximum=1000) == expected


def test_negative_page_size_is_rejected():
    with pytest.raises(InvalidInput, match="limit must be >= 0"):
        page_size(-1, default=200, maximum=1000)


def test_limit_errors_say_which_limit():
    assert str(GroupFull(3)) == "group has reached 3 members"
    assert str(TooManyGroups(500)) == "an account may join at most 500 groups"


@pytest.mark.parametrize("error", [InvalidInput("x"), GroupFull(1), TooManyGroups(1)])
def test_caller_errors_sit_under_the_documented_hierarchy(error):
    assert isinstance(error, CallerError) and isinstance(error, MembershipError)
    assert isinstance(error, LimitReached) == isinstance(error, (GroupFull, TooManyGroups))
