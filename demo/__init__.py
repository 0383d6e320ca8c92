"""The project's main job, runnable on one machine: `python -m demo` (see demo.__main__).

Run from the repository root; the API package (api/app) is put on sys.path here because
devcluster applies the migrations with its code.
"""

import sys
from pathlib import Path

_API = str(Path(__file__).resolve().parent.parent / "api")
if _API not in sys.path:
    sys.path.insert(0, _API)
