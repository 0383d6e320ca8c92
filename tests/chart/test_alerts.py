"""The alert rules shipped in the chart, checked and unit-tested with the real promtool.

charts/store-migration/files/alerts*.yaml is the one source: the PrometheusRule template
includes them, and tests/chart/alerts.test.yaml feeds promtool series that make every alert
fire and series that must leave it quiet.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.chart.render import CHART, ROOT

RULE_FILES = [CHART / "files" / name
              for name in ("alerts.yaml", "alerts-replication.yaml", "alerts-backup.yaml")]
TEST_FILE = ROOT / "tests" / "chart" / "alerts.test.yaml"
DAYS_FILE = ROOT / "tests" / "chart" / "alerts-days.test.yaml"  # 5 days of daily verifies


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool not installed: run scripts/bootstrap.sh (Debian's prometheus)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, check=False)


def test_rules_are_valid() -> None:
    done = promtool("check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass() -> None:
    done = promtool("test", "rules", str(TEST_FILE), str(DAYS_FILE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == 2


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = {r["alert"] for f in RULE_FILES
              for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]}
    cases = [case for path in (TEST_FILE, DAYS_FILE)
             for case in yaml.safe_load(path.read_text())["tests"]]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fired == alerts
    assert quiet == alerts
    listed = yaml.safe_load(TEST_FILE.read_text())["rule_files"]
    assert sorted((TEST_FILE.parent / p).resolve() for p in listed) == sorted(RULE_FILES)
