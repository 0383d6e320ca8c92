"""Kubernetes-style conditions and the bounded history kept in status.

lastTransitionTime changes only when a condition's status flips, as the API conventions ask,
so `kubectl describe` shows how long the resource has been Degraded, not when we last looked.
"""

from __future__ import annotations

from typing import Any

HISTORY_LIMIT = 20
CONDITION_TYPES = ("Ready", "Progressing", "Degraded", "Paused")


def set_condition(conditions: list[dict[str, Any]], type_: str, status: bool, reason: str,
                  message: str, now: str) -> bool:
    """Upsert a condition; True when its status flipped or its reason changed."""
    text = "True" if status else "False"
    for cond in conditions:
        if cond.get("type") == type_:
            changed = cond.get("status") != text or cond.get("reason") != reason
            if cond.get("status") != text:
                cond["lastTransitionTime"] = now
            cond.update(status=text, reason=reason, message=message)
            return changed
    conditions.append({"type": type_, "status": text, "reason": reason, "message": message,
                       "lastTransitionTime": now})
    return True


def get_condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    for cond in conditions:
        if cond.get("type") == type_:
            return cond
    return None


def append_history(history: list[dict[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [*history, entry][-HISTORY_LIMIT:]
