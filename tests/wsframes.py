"""Read back the WebSocket frames the gateway wrote, with the websockets library's parser."""

from __future__ import annotations

from websockets.frames import Frame
from websockets.streams import StreamReader


def read_frame(data: bytes) -> Frame:
    """The one complete, unmasked server frame in ``data``."""
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("incomplete frame")


def read_frames(data: bytes) -> list[Frame]:
    """Every complete, unmasked server frame in ``data`` (one write may carry several)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while reader.buffer:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
            continue
        raise AssertionError("incomplete frame")
    return frames
