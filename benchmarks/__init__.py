"""Benchmarks: `python -m benchmarks stores|load|inprocess`. Importing the package puts api/ and the
repository root on sys.path, so `app` and `devcluster` import without installing."""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
for _p in (str(_ROOT), str(_ROOT / "api")):
    if _p not in sys.path:
        sys.path.insert(0, _p)
