"""Copy the StoreMigration CRD from crds/ into the Helm chart's crds/ folder.

Helm (and `helm lint --strict`) does not follow symlinks out of a chart, so the chart
carries a byte-identical copy; tests/chart/test_chart.py fails when the two differ.
Run after editing crds/storemigrations.yaml:  python scripts/sync_crd.py  (--check: only compare).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "crds" / "storemigrations.yaml"
COPY = ROOT / "charts" / "store-migration" / "crds" / "storemigrations.yaml"


def in_sync() -> bool:
    return COPY.exists() and SOURCE.read_bytes() == COPY.read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the copy differs")
    args = parser.parse_args(argv)
    if not SOURCE.exists():
        print(f"missing {SOURCE.relative_to(ROOT)}", file=sys.stderr)
        return 2
    if in_sync():
        print("chart CRD is in sync")
        return 0
    if args.check:
        print(f"{COPY.relative_to(ROOT)} differs from {SOURCE.relative_to(ROOT)}: "
              "run python scripts/sync_crd.py", file=sys.stderr)
        return 1
    shutil.copyfile(SOURCE, COPY)
    print(f"copied {SOURCE.relative_to(ROOT)} -> {COPY.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
