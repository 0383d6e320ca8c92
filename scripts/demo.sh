#!/usr/bin/env bash
# The main job: the whole PostgreSQL migration on this machine, no cluster needed.
#   bash scripts/demo.sh            healthy run, about 3 minutes, ends Complete
#   bash scripts/demo.sh --faults   PostgreSQL faults at >= 20% reads: automatic rollback to 0%
#   bash scripts/demo.sh --keep     after the summary, keep the local cluster (emulator, API,
#                                   PostgreSQL, Prometheus, operator) up until Ctrl-C
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh >&2
export PATH="$ROOT/.tools/bin:$ROOT/.venv/bin:$PATH"  # kubectl finds kubectl-storemigration
exec .venv/bin/python -m demo "$@"
