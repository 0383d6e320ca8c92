#!/usr/bin/env bash
# The main job: the whole PostgreSQL migration on this machine, no cluster needed.
#   bash scripts/demo.sh            healthy run, about 3 minutes, ends Complete
#   bash scripts/demo.sh --faults   PostgreSQL faults at >= 20% reads: automatic rollback to 0%
#   bash scripts/demo.sh --keep     keep the temporary directory (data, logs, kubeconfig)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh >&2
export PATH="$ROOT/.tools/bin:$PATH"
exec .venv/bin/python -m demo "$@"
