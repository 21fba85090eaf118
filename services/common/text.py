"""Which characters people's text may hold: one rule for every edge (WebSocket, HTTP, gRPC).

Message text keeps newline and tab and refuses every other C0 control
character and DEL. NUL matters most: PostgreSQL cannot store it in a text
column at all, so one NUL that got through used to fail a whole group commit.
The rest (ESC, backspace, bell...) are refused because they never belong in a
chat message and can rewrite what a terminal shows of our logs.

Text of only invisible characters (``is_invisible``: spaces, zero-width and
other format characters, combining marks alone, blank-looking letters such as
the Hangul fillers) is refused like blank text: it shows as nothing at all.

Pure: returns the offending character, and each service raises its own
error type with ``describe``'s wording.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["forbidden_control", "describe_control", "is_invisible"]

# C0 controls except tab (\x09) and newline (\x0a), plus DEL.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def forbidden_control(text: str) -> str | None:
    """The first control character ``text`` may not hold, or None when it is clean."""
    found = _FORBIDDEN.search(text)
    return None if found is None else found.group()


def describe_control(name: str, char: str) -> str:
    """The error text for ``name`` holding ``char``, e.g. "text contains U+0000; ..."."""
    return (f"{name} contains the control character U+{ord(char):04X}; "
            "only newline and tab are allowed")


# Spaces, separators, controls, format characters (zero-width space and joiners, bidi controls,
# soft hyphen, tags) and combining marks, which show nothing without a base character.
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Mn", "Me"})
# Letters and symbols that render as blank space: Hangul fillers and the Braille blank.
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_invisible(text: str) -> bool:
    """True when no character of ``text`` would show (empty text included)."""
    return not any(char not in _BLANK_LOOKING and unicodedata.category(char) not in _INVISIBLE_CATEGORIES
                   for char in text)
