"""From Cleanup on the API runs PostgreSQL only and serves no /api/admin/switches, so the
operator stops reading them back (handlers.reconcile observes pods only while
core.switchset.pods_serve_switches holds for the stored phase)."""

from __future__ import annotations

import pytest
from storemigration_operator.core.spec import Phase
from storemigration_operator.core.switchset import LIVE_PHASES, pods_serve_switches


@pytest.mark.parametrize("phase", [None, *(p.name for p in Phase)])
def test_switches_are_read_in_the_live_phases_only(phase: str | None) -> None:
    live = phase is None or Phase[phase] in LIVE_PHASES
    assert pods_serve_switches(phase) is live
    assert pods_serve_switches(phase) is (phase not in ("Cleanup", "Complete"))
