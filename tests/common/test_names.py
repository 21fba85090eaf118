"""Names people can trust: the shared rules for display names and group names, with real attacks."""

from __future__ import annotations

import pytest

from chorus.common.names import confusable_key, name_problem
from chorus.common.text import is_invisible

CYRILLIC_A, CYRILLIC_O, CYRILLIC_ER, GREEK_ALPHA = "\u0410", "\u043e", "\u0440", "\u0391"


@pytest.mark.parametrize("name", [
    "Alice", "Café ☕", "日本語", "山田カタカナ", "김철수 Kim", "東京 Tokyo", "Иван Петров", "Ἀλέξανδρος",
    "שלום Shalom", "Ali ب", "O'Brien-Smith (she/her)", "Ann 👩\u200d💻", "👨\u200d👩\u200d👧",
    "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", "Team 🇫🇷", "Óscar", "12 team",
])
def test_ordinary_names_in_any_script_are_accepted(name):
    assert name_problem(name, "display name") is None


@pytest.mark.parametrize("name", [
    f"{CYRILLIC_A}lice",                  # Cyrillic А posing as Latin A
    f"P{CYRILLIC_A}yP{CYRILLIC_A}l",
    f"g{CYRILLIC_O}{CYRILLIC_O}gle",      # Cyrillic о
    f"{CYRILLIC_ER}aypal",                # Cyrillic р
    f"{GREEK_ALPHA}laskaJazz",            # Greek Α
    "Hello Мир",                          # Latin with Cyrillic, even when meant
])
def test_mixed_script_look_alikes_are_refused(name):
    assert "mixes scripts whose letters look alike" in name_problem(name, "display name")


@pytest.mark.parametrize("name", [
    "\u200b", "\u200b\u200c\u200d", "\u2060\ufeff", "\u3164", "\u3164\u3164", "\u2800", "\u115f\u1160",
    "\u00ad", "\u0301\u0301", " \u200b ", "\U000e0067\U000e0062",
])
def test_names_of_only_invisible_characters_are_refused(name):
    assert name_problem(name, "group name") == "group name must contain a visible character"


@pytest.mark.parametrize("name", [
    "Ann\u202eevil",    # right-to-left override: "Ann" + reversed text
    "Ann\u202bx",       # embedding
    "Ann\u2066x\u2069",  # isolate
    "Ann\u200fx",       # right-to-left mark
    "Ann\u2028Smith",   # line separator
    "Ann\u2029Smith",   # paragraph separator
    "Ann\x00", "Ann\nSmith", "Ann\x85Smith", "Ann\ud800",
])
def test_control_bidi_and_separator_characters_are_refused(name):
    assert name_problem(name, "group name") == "group name must not contain control characters"


def test_digits_of_two_number_systems_are_refused():
    assert "digits" in name_problem("\u09ea2 team", "group name")  # Bengali 4 looks like 8


@pytest.mark.parametrize(("a", "b"), [
    ("Alice", f"{CYRILLIC_A}lice"),
    ("Alice", f"{CYRILLIC_A}\u04cf\u0456\u0441\u0435"),  # all Cyrillic: one script, still a look-alike
    ("paypal", "paypaI"),                               # capital i for small L
    ("PayPal", "paypal"),
    ("microsoft", "rnicrosoft"),
    ("General", "GENERAL"),
    ("straße", "STRASSE"),
    ("caf\u00e9", "cafe\u0301"),                        # precomposed vs combining accent
    ("full", "\uff46\uff55\uff4c\uff4c"),               # fullwidth
    ("Google", f"G{CYRILLIC_O}{CYRILLIC_O}gle"),
])
def test_look_alike_names_share_a_key(a, b):
    assert confusable_key(a) == confusable_key(b)


@pytest.mark.parametrize(("a", "b"), [("general", "generals"), ("cat", "cot"), ("team 1", "team 2"),
                                      ("Иван", "Ivan")])
def test_names_that_look_different_have_different_keys(a, b):
    assert confusable_key(a) != confusable_key(b)


def test_keys_are_stable_under_their_own_transformation():
    for name in ("Alice", "paypaI", "Movies", "STRASSE", "rnicrosoft", "日本語"):
        assert confusable_key(confusable_key(name)) == confusable_key(name)


@pytest.mark.parametrize(("text", "invisible"), [
    ("", True), (" \t\n", True), ("\u200b\u200b", True), ("\u3164", True), ("\u0301", True),
    ("a", False), ("\u200ba", False), ("👍", False), ("\U0001fae8", False), ("日", False),
])
def test_is_invisible(text, invisible):
    assert is_invisible(text) is invisible
