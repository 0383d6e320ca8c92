"""Small helpers the contract tests share: parsing, not string-shape comparisons."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx


def ts(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"timestamp without offset: {value}"
    return parsed


def money(value: str) -> Decimal:
    assert isinstance(value, str), f"money must travel as a string, got {value!r}"
    return Decimal(value)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


def error(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()["detail"]


def names_field(detail: Any, field: str) -> bool:
    """True when a 422 detail list names `field` in some error's loc."""
    return any(field in [str(p) for p in e["loc"]] for e in detail)


def newest_first(items: list[dict[str, Any]], key: str = "created_at") -> bool:
    keys = [(ts(i[key]), str(i["id"])) for i in items]
    return keys == sorted(keys, reverse=True)


def oldest_first(items: list[dict[str, Any]], key: str = "timestamp") -> bool:
    keys = [(ts(i[key]), str(i["id"])) for i in items]
    return keys == sorted(keys)
