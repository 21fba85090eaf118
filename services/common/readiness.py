"""How a process says that it serves, and on which addresses: one line on stdout, and a file.

    CHORUS-READY {"service": "broker", "pid": 4242, "router": "tcp://127.0.0.1:40123", ...}

The line is the prefix ``CHORUS-READY`` and one JSON object. Every service writes
it exactly once, when its sockets are bound with the real ports (port 0 replaced
by the one the system picked) and it answers requests; ``--ready-file PATH``
also writes the same object to PATH, atomically (a reader sees the whole file or
none). The addresses per service are listed in docs/architecture.md ("Readiness").
Whoever waits for a file removes any old one before starting the process: a
killed process cannot remove its own.

Nothing else is written on stdout by the services (their logs go to stderr), so a
reader can take stdout line by line without parsing logs.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO

__all__ = ["PREFIX", "announce", "parse_line", "read_file"]

PREFIX = "CHORUS-READY "


def announce(service: str, ready_file: Path | None, *, out: TextIO | None = None,
             **addresses: str) -> dict:
    """Write the readiness line (and file); returns the object written."""
    ready = {"service": service, "pid": os.getpid(), **addresses}
    text = json.dumps(ready)
    if ready_file is not None:
        _write_atomically(Path(ready_file), text + "\n")
    print(PREFIX + text, file=out or sys.stdout, flush=True)
    return ready


def parse_line(line: str | bytes) -> dict | None:
    """The object of a readiness line, or None for any other line."""
    if isinstance(line, bytes):
        line = line.decode(errors="replace")
    if not line.startswith(PREFIX):
        return None
    try:
        ready = json.loads(line[len(PREFIX):])
    except ValueError:
        return None
    return ready if isinstance(ready, dict) else None


def read_file(path: Path) -> dict | None:
    """The object in a ready file, or None while there is none."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None


def _write_atomically(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
