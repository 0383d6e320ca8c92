"""`python -m benchmarks stores|load [options]`: the one entry point for both benchmarks."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("stores", "load"):
        sys.exit("usage: python -m benchmarks stores [--quick] | load [--quick|--full] ...")
    which, rest = sys.argv[1], sys.argv[2:]
    if which == "stores":
        from benchmarks.bench_stores import main as run
    else:
        from benchmarks.load_test import main as run
    run(rest)


if __name__ == "__main__":
    main()
