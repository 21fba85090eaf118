"""chorus.js stays small: the modules a page downloads to use it, each gzipped as the gateway
serves it, come to at most SDK_BUDGET_BYTES (Socket.IO's ESM client is 11.1 KB)."""

from __future__ import annotations

import gzip
import re

from chorus.webgate.app import SDK_DIR

SDK_BUDGET_BYTES = 10 * 1024
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;]*?\bfrom\s+["']\./([\w.-]+)["']""", re.MULTILINE)


def downloaded_with(entry: str) -> list[str]:
    """``entry`` and every module it imports, transitively."""
    seen, todo = [], [entry]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.append(name)
            todo += IMPORT.findall((SDK_DIR / name).read_text())
    return seen


def test_chorus_js_with_everything_it_imports_is_at_most_10_kb_gzipped():
    modules = downloaded_with("chorus.js")
    assert {"chorus.js", "session.js", "socket.js", "tabs.js", "policy.js"} <= set(modules)
    sizes = {name: len(gzip.compress((SDK_DIR / name).read_bytes(), compresslevel=9)) for name in modules}
    total = sum(sizes.values())
    assert total <= SDK_BUDGET_BYTES, f"chorus.js is {total} bytes gzipped, over {SDK_BUDGET_BYTES}: {sizes}"
