"""The page's pure modules (services/webgate/static/state.js and friends) under Node's own test
runner: `node --test tests/page/*.test.mjs`. No browser and no server: events in, state out.

Locally a machine without Node skips this; under CI=true it fails instead, so CI cannot go green
without running them. $CHORUS_TEST_NODE names another node binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
NODE_TIMEOUT_SECS = 120
MIN_NODE_MAJOR = 18  # node:test and `node --test FILE...` (Debian bookworm has 18)


def _node() -> str:
    wanted = os.environ.get("CHORUS_TEST_NODE", "node")
    node = shutil.which(wanted)
    problem = None
    if node is None:
        problem = f"{wanted} not found (Node.js {MIN_NODE_MAJOR} or newer runs the page's unit tests)"
    else:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        major = int(version.lstrip("v").split(".")[0]) if version.startswith("v") else 0
        if major < MIN_NODE_MAJOR:
            problem = f"{node} is {version or 'unknown'}; the page's unit tests need Node {MIN_NODE_MAJOR} or newer"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return node


def test_the_pages_state_module_passes_its_node_unit_tests():
    files = sorted(str(path) for path in HERE.glob("*.test.mjs"))
    assert files, f"no *.test.mjs in {HERE}"
    result = subprocess.run([_node(), "--test", *files], capture_output=True, text=True,
                            timeout=NODE_TIMEOUT_SECS, cwd=HERE)
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"node --test failed:\n{report}"
    assert "# fail 0" in report and "# pass " in report, report
