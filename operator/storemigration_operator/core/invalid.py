"""The plan for a spec that cannot be acted on: Degraded (InvalidSpec), a Warning, no changes."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .conditions import set_condition
from .durations import format_time
from .model import Event, Plan


def invalid_spec_plan(status: Mapping[str, Any], error: str, now: datetime,
                      generation: int) -> Plan:
    st: dict[str, Any] = copy.deepcopy(dict(status))
    st.pop("kopf", None)
    st.setdefault("phase", "Preparation")
    st.setdefault("readPercent", 0)
    conds: list[dict[str, Any]] = st.setdefault("conditions", [])
    nows = format_time(now)
    set_condition(conds, "Degraded", True, "InvalidSpec", error, nows)
    set_condition(conds, "Progressing", False, "InvalidSpec", "fix the spec to continue", nows)
    st.update(observedGeneration=generation, reason="InvalidSpec", message=error)
    return Plan(status=st, events=[Event("Warning", "InvalidSpec", error)])
