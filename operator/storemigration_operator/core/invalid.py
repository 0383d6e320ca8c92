"""The plan for a spec that cannot be acted on: Degraded (InvalidSpec), a Warning, no changes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .conditions import set_condition
from .model import Event, Plan
from .spec import InvalidSpec, MigrationSpec, parse_spec
from .status import read_status


def invalid_spec_plan(status: Mapping[str, Any], error: str, now: datetime,
                      generation: int) -> Plan:
    st = read_status(status)
    set_condition(st.conditions, "Degraded", True, "InvalidSpec", error, now)
    set_condition(st.conditions, "Progressing", False, "InvalidSpec", "fix the spec to continue",
                  now)
    st.observed_generation, st.reason, st.message = generation, "InvalidSpec", error
    return Plan(status=st.wire(), events=[Event("Warning", "InvalidSpec", error)])


def effective_spec(doc: Mapping[str, Any], status: Mapping[str, Any]
                   ) -> tuple[MigrationSpec | None, str | None]:
    """(the spec to plan with, the error of the current spec or None).

    An invalid spec must not blind the operator: while it is being fixed, the last valid spec
    (kept in status.lastValidSpec) still drives the gates and their rollbacks. None as the spec
    means there has never been a valid one: only the InvalidSpec plan applies."""
    last: MigrationSpec | None = None
    if isinstance(status.get("lastValidSpec"), Mapping):
        try:  # one this version cannot read (an older operator's) is no last valid spec
            last = parse_spec(status["lastValidSpec"])
        except InvalidSpec:
            last = None
    try:
        spec = parse_spec(doc)
        if last is not None:
            check_immutable(spec, last)
        return spec, None
    except InvalidSpec as e:
        return last, str(e)


def check_immutable(spec: MigrationSpec, first: MigrationSpec) -> None:
    """spec.deployment and spec.stores name what the migration moves; changing them midway
    would leave the old Deployment or store half-migrated. The CRD refuses the change with a
    CEL rule; this is the same rule for API servers that do not run CEL."""
    if spec.deployment != first.deployment:
        raise InvalidSpec(f"deployment: immutable after creation (was {first.deployment!r}); "
                          "create a new StoreMigration instead")
    if set(spec.stores) != set(first.stores):
        raise InvalidSpec(f"stores: immutable after creation (was {list(first.stores)}); "
                          "create a new StoreMigration instead")
