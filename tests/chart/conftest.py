"""Session fixtures: the chart rendered once per values file (see render.py)."""

from __future__ import annotations

import pytest

from tests.chart.render import PRODUCTION_VALUES, Docs, template


@pytest.fixture(scope="session")
def default_docs() -> Docs:
    return template()


@pytest.fixture(scope="session")
def production_docs() -> Docs:
    return template("-f", str(PRODUCTION_VALUES))
