"""The rooms of the code base hold: services never import each other, contracts do no I/O.

The rules are import-linter contracts in pyproject.toml; this runs them on the
real tree, and once on a copy with one forbidden import added, to show a new
cross-service import would fail CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=package_parent, env=env, capture_output=True, text=True, timeout=120)


def test_every_import_contract_is_kept(tmp_path):
    shutil.copytree(ROOT / "services", tmp_path / "chorus", ignore=shutil.ignore_patterns("__pycache__"))
    result = lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_gateway_reaching_into_the_broker_breaks_the_build(tmp_path):
    shutil.copytree(ROOT / "services", tmp_path / "chorus", ignore=shutil.ignore_patterns("__pycache__"))
    ws = tmp_path / "chorus" / "webgate" / "ws.py"
    ws.write_text("import chorus.broker.core  # a shortcut someone might take\n" + ws.read_text())
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "Services never import each other BROKEN" in result.stdout, result.stdout
    assert "chorus.webgate.ws -> chorus.broker.core" in result.stdout, result.stdout
