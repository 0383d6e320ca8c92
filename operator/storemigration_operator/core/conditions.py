"""Kubernetes-style conditions and the bounded history kept in status.

lastTransitionTime changes only when a condition's status flips, as the API conventions ask,
so `kubectl describe` shows how long the resource has been Degraded, not when we last looked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from .status import Condition, HistoryEntry

HISTORY_LIMIT = 20
CONDITION_TYPES = ("Ready", "Progressing", "Degraded", "Paused")


def set_condition(conditions: list[Condition], type_: str, status: bool, reason: str,
                  message: str, now: datetime) -> bool:
    """Upsert a condition; True when its status flipped or its reason changed."""
    text: Literal["True", "False"] = "True" if status else "False"
    for cond in conditions:
        if cond.type == type_:
            changed = cond.status != text or cond.reason != reason
            if cond.status != text:
                cond.last_transition_time = now
            cond.status, cond.reason, cond.message = text, reason, message
            return changed
    conditions.append(Condition(type=type_, status=text, reason=reason, message=message,
                                last_transition_time=now))
    return True


def get_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def append_history(history: list[HistoryEntry], entry: HistoryEntry) -> list[HistoryEntry]:
    return [*history, entry][-HISTORY_LIMIT:]
