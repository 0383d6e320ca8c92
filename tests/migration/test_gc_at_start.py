"""`python -m app` freezes what it loaded before its first request (GC_FREEZE_AT_START,
app.gc_policy): a restarted API holding records from its journal has them out of the
collector's reach, and with the setting off it freezes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from devcluster.api_process import LocalApi

pytestmark = pytest.mark.slow


def gc_figures(url: str) -> tuple[float, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    frozen = re.search(r"^storemigration_gc_frozen_objects (\S+)$", text, re.M)
    freezes = re.search(r"^storemigration_gc_freezes_total (\S+)$", text, re.M)
    assert frozen and freezes, text[-2000:]
    return float(frozen[1]), float(freezes[1])


def test_a_restarted_api_freezes_the_records_it_loaded(tmp_path: Path) -> None:
    api = LocalApi(tmp_path / "data", tmp_path / "api.log", env={"STORE_BACKEND": "memory"})
    api.start()
    try:
        empty, freezes = gc_figures(api.url)  # modules and the app, no records yet
        assert freezes == 1 and empty > 0
        with httpx.Client(base_url=api.url, timeout=10) as c:
            for i in range(2000):
                assert c.put(f"/api/projects/npm/held-{i}", json={"version": "1"}
                             ).status_code == 200
        api.stop()
        api.start()
        frozen, freezes = gc_figures(api.url)
        assert freezes == 1
        assert frozen >= empty + 2000  # at least one object per record it loaded
        with httpx.Client(base_url=api.url, timeout=10) as c:
            assert c.get("/api/projects/npm/held-1999").status_code == 200
        api.stop()
        api.start(env={"STORE_BACKEND": "memory", "GC_FREEZE_AT_START": "false"})
        assert gc_figures(api.url) == (0.0, 0.0)
    finally:
        api.stop()
