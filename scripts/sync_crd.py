"""Write the StoreMigration CRD, generated from the operator's spec and status models, to
crds/ and to the Helm chart's crds/ folder.

The models (operator/storemigration_operator/core/spec.py and status.py) are the source;
both files are generated, byte-identical copies (Helm does not follow symlinks out of a
chart). tests/operator/test_crd_generated.py fails when either differs from the models.
Run after changing a model:  python scripts/sync_crd.py   (--check: only compare, exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "operator"))

from storemigration_operator.core.crd import render  # noqa: E402  (after the path)

TARGETS = (ROOT / "crds" / "storemigrations.yaml",
           ROOT / "charts" / "store-migration" / "crds" / "storemigrations.yaml")


def stale(text: str) -> list[Path]:
    return [p for p in TARGETS if not p.exists() or p.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file differs")
    args = parser.parse_args(argv)
    text = render()
    behind = stale(text)
    if not behind:
        print("CRDs match the models")
        return 0
    names = ", ".join(str(p.relative_to(ROOT)) for p in behind)
    if args.check:
        print(f"{names} differ from the models: run python scripts/sync_crd.py",
              file=sys.stderr)
        return 1
    for path in behind:
        path.write_text(text)
    print(f"wrote {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
