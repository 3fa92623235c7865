"""`python -m autosdlc_ws.tools.schemas --write|--check`: the generated schema files.

The rendering lives in `core.schema_export` (no I/O beyond reading the
models); this is the command around it, writing or checking the files in a
checkout (`make schemas`, `make docs`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from autosdlc_ws.core.schema_export import rendered_files, stale_files

#: The checkout this module sits in (src/autosdlc_ws/tools/schemas.py).
REPO_ROOT = Path(__file__).resolve().parents[3]
COMMAND = "python -m autosdlc_ws.tools.schemas"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Generate or check the JSON Schemas and the AsyncAPI document.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="(re)write the generated files")
    mode.add_argument("--check", action="store_true", help="exit 1 if any file is stale")
    parser.add_argument("--root", type=Path, default=REPO_ROOT,
                        help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    root: Path = args.root
    files = rendered_files(root)
    stale = stale_files(files)
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(root)}", file=sys.stderr)
        if stale:
            print(f"run: {COMMAND} --write", file=sys.stderr)
            return 1
        return 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path], encoding="utf-8", newline="\n")
        print(f"wrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
