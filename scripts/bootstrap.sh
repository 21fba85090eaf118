#!/usr/bin/env bash
# Make .venv hold Chorus and its dependencies; cheap when nothing changed.
#   scripts/bootstrap.sh          runtime only (what `./chorus up` needs)
#   scripts/bootstrap.sh dev      plus test and code-generation tools
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
extra="${1:-}"
venv="$root/.venv"
python="${PYTHON:-python3}"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Chorus needs Python 3.11 or newer as '$python' (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv" >&2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
# Reinstall only when pyproject.toml changed since the last install of this flavour.
stamp="$venv/.chorus-installed${extra:+-$extra}"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  echo "installing Chorus${extra:+ with $extra tools} into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root${extra:+[$extra]}"
  touch "$stamp"
fi
