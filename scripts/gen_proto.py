"""Generate the Python protobuf/gRPC modules in services/wire/pb/ from proto/.

The one place generated code comes from. Run after editing any .proto:

    .venv/bin/python scripts/gen_proto.py          # regenerate
    .venv/bin/python scripts/gen_proto.py --check  # fail if services/wire/pb is stale

The .proto files live at proto/chorus/wire/pb/*.proto so that protoc writes imports
as `from chorus.wire.pb import x_pb2`, which is where the package installs them.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO_DIR = PROTO_ROOT / "chorus" / "wire" / "pb"
TARGET = ROOT / "services" / "wire" / "pb"


def generate(out: Path) -> None:
    protos = sorted(str(p) for p in PROTO_DIR.glob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *protos,
        ]
    )
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / "chorus" / "wire" / "pb"
        names = sorted(p.name for p in fresh.iterdir() if p.is_file())
        if args.check:
            stale = [n for n in names if not (TARGET / n).exists()
                     or not filecmp.cmp(fresh / n, TARGET / n, shallow=False)]
            if stale:
                print(f"services/wire/pb is stale: {', '.join(stale)}; run scripts/gen_proto.py")
                return 1
            return 0
        TARGET.mkdir(parents=True, exist_ok=True)
        for n in names:
            shutil.copyfile(fresh / n, TARGET / n)
        (TARGET / "__init__.py").write_text('"""Generated from proto/ by scripts/gen_proto.py; do not edit."""\n')
    return 0


if __name__ == "__main__":
    sys.exit(main())
