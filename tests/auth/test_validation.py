"""The registration rules people meet: usernames, passwords, display names, and their messages."""

from __future__ import annotations

import pytest

from chorus.auth.errors import AuthError, BadCredentials, CallerError, InvalidInput, UsernameTaken
from chorus.auth.validation import (
    DISPLAY_NAME_MAX_CHARS,
    MAX_ACCOUNT_IDS_PER_CALL,
    PASSWORD_MAX_CHARS,
    PASSWORD_MIN_CHARS,
    USERNAME_MAX_CHARS,
    USERNAME_MIN_CHARS,
    account_ids,
    check_display_name,
    check_password,
    check_username,
    username_key,
)

USERNAME_RULE = "username must be 3-32 characters: letters, digits, '_', '.', '-'"


def test_the_documented_bounds():
    assert (USERNAME_MIN_CHARS, USERNAME_MAX_CHARS) == (3, 32)
    assert (PASSWORD_MIN_CHARS, PASSWORD_MAX_CHARS) == (8, 128)
    assert DISPLAY_NAME_MAX_CHARS == 64


@pytest.mark.parametrize("username", ["ann", "x" * USERNAME_MAX_CHARS, "Ann_B.c-9", "A1b", "a_b", "a.b", "a-b"])
def test_valid_usernames_are_kept_as_typed(username):
    assert check_username(username) == username


@pytest.mark.parametrize("username", ["", "an", "x" * (USERNAME_MAX_CHARS + 1)])
def test_usernames_outside_the_length_bounds_are_refused(username):
    with pytest.raises(InvalidInput) as caught:
        check_username(username)
    assert str(caught.value) == USERNAME_RULE


@pytest.mark.parametrize(
    "username",
    ["ann bob", "ann@example", "ann!", "josé", "日本語", "ann\n", "\nann", "ann\x00", "ann/x", " ann", "ann\t"],
)
def test_usernames_with_other_characters_are_refused(username):
    with pytest.raises(InvalidInput, match="letters, digits"):
        check_username(username)


@pytest.mark.parametrize(("a", "b"), [("Ann", "ann"), ("ANN", "aNn"), ("Ann.B-c_9", "ann.b-C_9")])
def test_usernames_differing_only_in_case_share_a_key(a, b):
    assert username_key(a) == username_key(b)


def test_different_usernames_have_different_keys():
    assert username_key("ann") != username_key("anne")
    assert username_key("a.b") != username_key("a-b")


@pytest.mark.parametrize("password", ["x" * PASSWORD_MIN_CHARS, "x" * PASSWORD_MAX_CHARS, "  spaced out  ", "é" * 8])
def test_valid_passwords_are_kept_exactly_including_spaces(password):
    assert check_password(password) == password


@pytest.mark.parametrize(("password", "message"), [
    ("", "password must be at least 8 characters"),
    ("x" * (PASSWORD_MIN_CHARS - 1), "password must be at least 8 characters"),
    ("x" * (PASSWORD_MAX_CHARS + 1), "password must be at most 128 characters"),
])
def test_passwords_outside_the_length_bounds_are_refused(password, message):
    with pytest.raises(InvalidInput) as caught:
        check_password(password)
    assert str(caught.value) == message


def test_password_length_counts_characters_not_bytes():
    assert check_password("日本語日本語日本") == "日本語日本語日本"  # 8 characters, 24 bytes
    with pytest.raises(InvalidInput):
        check_password("日本語日本語日")


@pytest.mark.parametrize("raw", ["", " ", "\t \n"])
def test_blank_display_name_defaults_to_the_username(raw):
    assert check_display_name(raw, default="ann") == "ann"


def test_display_name_is_stripped():
    assert check_display_name("  Ann Smith \n", default="ann") == "Ann Smith"


def test_display_name_length_is_counted_after_stripping():
    longest = "x" * DISPLAY_NAME_MAX_CHARS
    assert check_display_name(f"  {longest}  ", default="ann") == longest


def test_too_long_display_name_is_refused():
    with pytest.raises(InvalidInput) as caught:
        check_display_name("x" * (DISPLAY_NAME_MAX_CHARS + 1), default="ann")
    assert str(caught.value) == "display name must be at most 64 characters"


@pytest.mark.parametrize(
    "raw",
    [
        "Ann\x00",
        "Ann\nSmith",
        "Ann\tSmith",
        "\x1b[31mAnn",
        "Ann\x7f",
        "Ann\x85Smith",  # C1 next-line
        "Ann\u2028Smith",  # line separator
        "Ann\u202eevil",  # right-to-left override: would reorder the chat line around it
        "Ann\u2066x\u2069",  # isolate
        "Ann\ud800",  # lone surrogate
    ],
)
def test_display_name_with_control_characters_is_refused(raw):
    with pytest.raises(InvalidInput) as caught:
        check_display_name(raw, default="ann")
    assert str(caught.value) == "display name must not contain control characters"


@pytest.mark.parametrize(
    "raw",
    [
        "Café ☕",
        "日本語",
        "Ann 👩\u200d💻",  # emoji joined with a zero-width joiner
        "👨\u200d👩\u200d👧",
        "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # flag built from tag characters
        "Ann \U0001fae8",  # an emoji newer than some Python Unicode databases
        "O'Brien-Smith (she/her)",
    ],
)
def test_ordinary_unicode_display_names_are_accepted(raw):
    assert check_display_name(raw, default="ann") == raw


def test_error_messages_say_what_happened_without_secrets():
    assert str(UsernameTaken("Ann")) == "the username 'Ann' is taken"
    assert str(BadCredentials()) == "wrong username or password"


@pytest.mark.parametrize("error", [InvalidInput("x"), UsernameTaken("ann"), BadCredentials()])
def test_caller_errors_sit_under_the_documented_hierarchy(error):
    assert isinstance(error, CallerError) and isinstance(error, AuthError)


def test_account_ids_keep_the_order_and_drop_empty_and_repeated_ids():
    assert account_ids(["u_b", "", "u_a", "u_b"]) == ["u_b", "u_a"]
    assert account_ids([]) == []


def test_account_ids_are_bounded_per_call_counting_what_was_sent():
    assert MAX_ACCOUNT_IDS_PER_CALL == 1000
    assert len(account_ids(["u_same"] * 1000)) == 1
    with pytest.raises(InvalidInput, match="at most 1000 ids per call, got 1001"):
        account_ids([""] * 1001)
