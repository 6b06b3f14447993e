"""Check that the wheel holds every module, stylesheet and lesson file of the checkout.

An editable install (the README's) finds any package on disk, so a package missing from the
setuptools configuration only breaks a normal `pip install .`; this catches it in CI.

    python .ci/check_wheel.py dist/cnn_tui-*.whl
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

ROOTS = ("tui", "trainer", "presets")
KINDS = ("*.py", "*.tcss", "*.toml")


def main(wheel: str) -> int:
    repo = Path(__file__).resolve().parents[1]
    held = set(zipfile.ZipFile(wheel).namelist())
    wanted = {p.relative_to(repo).as_posix() for root in ROOTS for kind in KINDS
              for p in (repo / root).rglob(kind) if "__pycache__" not in p.parts}
    missing = sorted(wanted - held)
    for name in missing:
        print(f"check_wheel: {Path(wheel).name} lacks {name}", file=sys.stderr)
    print(f"check_wheel: {len(wanted) - len(missing)} of {len(wanted)} files in the wheel")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
