"""Names people show each other (display names, group names): which are allowed, and which count as
the same. One rule for every service; pure (ICU's data, no I/O).

``name_problem`` refuses, in a name that is already stripped and non-empty:
- control characters (Cc: NUL, newline, C1...), lone surrogates, line and
  paragraph separators, and the bidi embeddings, overrides, isolates and marks
  (U+202A-202E, U+2066-2069, U+200E/200F, U+061C): they reorder or break the
  chat line around the name;
- names of only invisible characters (common.text.is_invisible): zero-width
  spaces, fillers or combining marks look like no name at all;
- mixed-script look-alikes, by Unicode's UTS #39 through ICU's SpoofChecker at
  its "moderately restrictive" level: one script, or Latin with one other
  script except Cyrillic, Greek and Cherokee (whose letters pass for Latin
  ones: "Аlice" with a Cyrillic А); Han with Hiragana and Katakana, or with
  Hangul, counts as one; Common characters (digits, punctuation, emoji) and
  combining marks go with anything. Also refused: digits of two numbering
  systems ("৪2"), and the same combining mark twice in a row.
Other format characters stay allowed: emoji sequences need the zero-width
joiner and tag characters.

``confusable_key`` says when two names are the same for uniqueness: equal keys
are names that look alike (UTS #39's confusables skeleton: "paypaI" with a
capital I and "paypal", "rn" and "m") ignoring case ("Chat", "CHAT") and
compatibility forms (NFKC: "ｆｕｌｌ", "full"). Case-insensitive and
look-alike together make "i" and "l" the same letter: "I" is both the capital
of "i" and a look-alike of "l". The key is for comparing, never for display.
It depends on ICU's data (the pinned pyicu-wheels): a different ICU may give
different keys, so stored keys are recomputed when it changes.
"""

from __future__ import annotations

import unicodedata

import icu

from chorus.common.text import is_invisible

__all__ = ["name_problem", "confusable_key"]

# Bidi embeddings, overrides and isolates, and the invisible marks LRM, RLM and ALM.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_CONTROL_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_KEY_ROUNDS = 4  # skeleton and case folding feed each other; a few rounds reach a fixed point

_spoof = icu.SpoofChecker()
# Every character is allowed as such (spaces, emoji, punctuation: these are names, not
# identifiers); what is checked is how scripts mix, numbers mix and marks repeat.
_spoof.setAllowedUnicodeSet(icu.UnicodeSet("[\\u0000-\\U0010FFFF]"))
_spoof.setRestrictionLevel(icu.URestrictionLevel.MODERATELY_RESTRICTIVE)
_spoof.setChecks(icu.USpoofChecks.RESTRICTION_LEVEL | icu.USpoofChecks.MIXED_NUMBERS
                 | icu.USpoofChecks.INVISIBLE)
_skeletons = icu.SpoofChecker()


def name_problem(name: str, field: str) -> str | None:
    """What is wrong with ``name`` (stripped, non-empty), in words naming ``field``; None if nothing."""
    if any(unicodedata.category(char) in _CONTROL_CATEGORIES or char in _BIDI_CONTROLS for char in name):
        return f"{field} must not contain control characters"
    if is_invisible(name):
        return f"{field} must contain a visible character"
    failed = _spoof.check(name)
    if failed & icu.USpoofChecks.RESTRICTION_LEVEL:
        return (f"{field} mixes scripts whose letters look alike (such as Latin with Cyrillic or Greek); "
                "write it in one script")
    if failed & icu.USpoofChecks.MIXED_NUMBERS:
        return f"{field} mixes digits of different number systems"
    if failed:
        return f"{field} repeats a combining mark"
    return None


def confusable_key(name: str) -> str:
    """The key under which look-alike names collide (see the module docstring)."""
    key = _skeletons.getSkeleton(0, unicodedata.normalize("NFKC", name).upper())
    for _ in range(_KEY_ROUNDS):
        folded = _skeletons.getSkeleton(0, key.casefold()).casefold()
        if folded == key:
            break
        key = folded
    return unicodedata.normalize("NFC", key)
