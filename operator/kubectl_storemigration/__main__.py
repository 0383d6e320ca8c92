"""`python -m kubectl_storemigration`, the same as the kubectl-storemigration script."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
