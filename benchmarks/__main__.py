"""`python -m benchmarks stores|load|inprocess [options]`: the benchmarks' one entry point."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("stores", "load", "inprocess", "scale"):
        sys.exit("usage: python -m benchmarks stores [--quick] | load [--quick|--full|--ab N] "
                 "... | inprocess | scale [--records N]")
    which, rest = sys.argv[1], sys.argv[2:]
    if which == "stores":
        from benchmarks.bench_stores import main as run
    elif which == "load":
        from benchmarks.load_test import main as run
    elif which == "scale":
        from benchmarks.scale import main as run
    else:
        from benchmarks.inprocess import main as run
    run(rest)


if __name__ == "__main__":
    main()
