"""Close reasons fit a close frame and stay valid UTF-8 however long the text."""

from __future__ import annotations

import pytest

from chorus.webgate.session_protocol import MAX_CLOSE_REASON_BYTES, close_reason


@pytest.mark.parametrize("text", ["auth timeout", "x" * 500, "é" * 100, "0" + "€" * 60, "🎉" * 40, "\udc80 lone"])
def test_close_reason(text):
    reason = close_reason(text)
    assert len(reason) <= MAX_CLOSE_REASON_BYTES
    decoded = reason.decode("utf-8")  # raises if cut inside a character
    if text.isascii():
        assert text.startswith(decoded)
