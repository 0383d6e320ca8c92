#!/usr/bin/env bash
# The project's test command: installs what is missing, lints, type-checks, checks the
# import layers (pyproject's [tool.importlinter]) and runs every
# test (unit, contract on each backend, PostgreSQL, operator end-to-end, chart, alert rules).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
export PATH="$ROOT/.tools/bin:$ROOT/.venv/bin:$PATH"
echo "== ruff"; ruff check .
echo "== mypy"; mypy api/app operator/storemigration_operator operator/kubectl_storemigration devcluster demo api/scripts
echo "== lint-imports"; PYTHONPATH="$ROOT/api:$ROOT/operator" lint-imports
# Two xdist workers, a test file each (its module fixtures stay on one worker): most
# end-to-end tests wait on the processes they start. Then the `serial` tests, alone on the
# machine: they compare latencies, which the other worker's load would distort. Arguments
# (paths, -k; not -m, which the two runs set) go to both; a run that selects nothing
# (exit 5) is not a failure unless neither selects anything.
echo "== pytest"
first=0; pytest -q -n 2 --dist loadfile -m "not serial" "$@" || first=$?
[ "$first" -eq 0 ] || [ "$first" -eq 5 ] || exit "$first"
echo "== pytest (serial)"
second=0; pytest -q -n 0 -m serial "$@" || second=$?
if [ "$second" -eq 5 ] && [ "$first" -eq 0 ]; then second=0; fi
exit "$second"
