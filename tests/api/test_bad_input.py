"""Bad input as a new user would try it: every case gets a 4xx with a message that says
what was wrong (naming the field where there is one), and never a 500."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest

JSON = {"content-type": "application/json"}
UUID_ = "6f1c2d4e-0000-4000-8000-000000000001"


def raw(text: str) -> dict[str, Any]:
    return {"content": text, "headers": JSON}


def body(value: Any) -> dict[str, Any]:
    return {"json": value}


def contribution(**fields: Any) -> dict[str, Any]:
    return body({"contributor_id": UUID_, "asset_id": UUID_, "cost_amount": "1"} | fields)


def task(**fields: Any) -> dict[str, Any]:
    return body({"direction": "do it", "task_type": "impl"} | fields)


# (method, url, request kwargs, expected status, text the message must contain)
CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    # wrong types
    ("POST", "/v1/contributors", body({"name": 123}), 422, "name"),
    ("POST", "/v1/contributors", body({"name": ["a"]}), 422, "name"),
    ("POST", "/v1/contributors", body({"name": "a", "metadata": "x"}), 422, "metadata"),
    ("POST", "/v1/contributors", body({"name": "a", "hourly_rate": True}), 422, "hourly_rate"),
    ("POST", "/v1/contributors", body({"name": "a", "email": "not-an-email"}), 422, "email"),
    (
        "POST",
        "/v1/assets",
        body({"type": "CODE", "name": None, "description": 5}),
        422,
        "description",
    ),
    ("POST", "/api/agent/tasks", task(direction=42), 422, "direction"),
    ("POST", "/api/agent/tasks", task(context=[1, 2]), 422, "context"),
    ("PUT", "/api/projects/pypi/x", body({"version": 1.5}), 422, "version"),
    ("PUT", "/api/projects/pypi/x", body([1, 2]), 422, "body"),
    (
        "POST",
        "/api/projects/pypi/x/dependencies",
        body({"ecosystem": 1, "name": 2}),
        422,
        "ecosystem",
    ),
    ("GET", "/api/search?q=x&limit=abc", {}, 422, "limit"),
    ("GET", "/v1/contributors?limit=1.5", {}, 422, "limit"),
    ("GET", "/api/agent/tasks?offset=x", {}, 422, "offset"),
    # huge strings
    ("POST", "/v1/contributors", body({"name": "n" * 256}), 422, "name"),
    (
        "POST",
        "/v1/assets",
        body({"type": "CODE", "name": "a", "description": "d" * 100_001}),
        422,
        "description",
    ),
    ("POST", "/api/agent/tasks", task(direction="d" * 5001), 422, "direction"),
    (
        "POST",
        "/v1/contributors",
        body({"name": "a", "metadata": {"k": "v" * 70_000}}),
        422,
        "metadata",
    ),
    ("PUT", f"/api/projects/{'e' * 101}/x", body({}), 422, "ecosystem"),
    ("PUT", f"/api/projects/pypi/{'n' * 256}", body({}), 422, "name"),
    ("GET", f"/api/search?q={'q' * 1001}", {}, 422, "q"),
    # unknown enum values
    ("POST", "/v1/contributors", body({"name": "a", "type": "ROBOT"}), 422, "type"),
    ("POST", "/v1/assets", body({"type": "code", "name": "a"}), 422, "type"),
    ("POST", "/api/agent/tasks", task(task_type="deploy"), 422, "task_type"),
    ("GET", "/api/agent/tasks?status=archived", {}, 422, "status"),
    ("GET", "/api/agent/tasks?task_type=x", {}, 422, "task_type"),
    # negative or absurd amounts
    ("POST", "/v1/contributions", contribution(cost_amount="-1"), 422, "cost_amount"),
    ("POST", "/v1/contributions", contribution(cost_amount=-0.5), 422, "cost_amount"),
    ("POST", "/v1/contributions", contribution(cost_amount="1e30"), 422, "cost_amount"),
    ("POST", "/v1/contributions", contribution(cost_amount="abc"), 422, "cost_amount"),
    (
        "POST",
        "/v1/contributions",
        raw(f'{{"contributor_id": "{UUID_}", "asset_id": "{UUID_}", "cost_amount": NaN}}'),
        422,
        "cost_amount",
    ),
    (
        "POST",
        "/v1/contributions",
        raw(f'{{"contributor_id": "{UUID_}", "asset_id": "{UUID_}", "cost_amount": 1e400}}'),
        422,
        "cost_amount",
    ),
    (
        "POST",
        "/v1/distributions",
        body({"asset_id": UUID_, "value_amount": "-100"}),
        422,
        "value_amount",
    ),
    ("POST", "/v1/contributors", body({"name": "a", "hourly_rate": "-3"}), 422, "hourly_rate"),
    (
        "PATCH",
        "/api/agent/tasks/task_0000000000000000",
        body({"progress_pct": -5}),
        422,
        "progress_pct",
    ),
    (
        "PATCH",
        "/api/agent/tasks/task_0000000000000000",
        body({"progress_pct": 10**30}),
        422,
        "progress_pct",
    ),
    # malformed UUIDs
    ("GET", "/v1/contributors/123", {}, 422, "contributor_id"),
    ("GET", "/v1/assets/not-a-uuid", {}, 422, "asset_id"),
    ("GET", "/v1/contributions/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", {}, 422, "contribution_id"),
    ("GET", "/v1/assets/%20/contributions", {}, 422, "asset_id"),
    ("POST", "/v1/contributions", contribution(asset_id="1234"), 422, "asset_id"),
    ("POST", "/v1/distributions", body({"asset_id": "x", "value_amount": "1"}), 422, "asset_id"),
    # not JSON, or not the JSON expected
    ("POST", "/v1/contributors", raw("{name: 'ada'}"), 422, "not valid JSON"),
    ("POST", "/v1/contributors", raw('{"name": "ada"'), 422, "not valid JSON"),
    ("POST", "/api/agent/tasks", raw(""), 422, "body"),
    (
        "POST",
        "/api/agent/tasks",
        {"content": "direction=x", "headers": {"content-type": "text/plain"}},
        422,
        "body",
    ),
    ("POST", "/api/agent/tasks", raw("null"), 422, "body"),
    ("POST", "/api/agent/tasks", raw('"a string"'), 422, "body"),
    ("POST", "/v1/contributors", raw("[" * 100_000 + "]" * 100_000), 422, "nested too deeply"),
    # fields a client may not set
    ("POST", "/v1/contributors", body({"name": "a", "id": str(uuid.uuid4())}), 422, "id"),
    (
        "POST",
        "/v1/assets",
        body({"type": "CODE", "name": "a", "total_cost": "5"}),
        422,
        "total_cost",
    ),
    ("POST", "/api/agent/tasks", task(id="task_0000000000000000"), 422, "id"),
    # missing things
    ("POST", "/v1/assets", body({"type": "CODE"}), 422, "name"),
    ("POST", "/v1/contributions", body({}), 422, "contributor_id"),
    ("PATCH", "/api/agent/tasks/task_0000000000000000", body({}), 400, "At least one field"),
    ("GET", "/no/such/route", {}, 404, "Not Found"),
    ("DELETE", "/v1/assets", {}, 405, "Method Not Allowed"),
]


def _names(detail: Any, mentions: str) -> bool:
    """The loc of some error is `mentions`, or a message says it as a word."""
    if isinstance(detail, str):
        return mentions in detail
    for error in detail:
        if mentions in [str(p) for p in error["loc"]]:
            return True
        if re.search(rf"(?<![\w_]){re.escape(mentions)}(?![\w_])", error["msg"]):
            return True
    return False


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "mentions"),
    CASES,
    ids=[f"{c[0]} {c[1][:40]} {c[4]}" for c in CASES],
)
async def test_bad_input_is_a_clear_4xx(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    kwargs: dict[str, Any],
    status: int,
    mentions: str,
) -> None:
    response = await client.request(method, url, **kwargs)
    assert response.status_code == status, response.text[:500]
    detail = response.json()["detail"]
    assert _names(detail, mentions), detail
    assert len(response.content) < 10_000, "errors must not echo large inputs"


async def test_ten_megabyte_body_is_413(client: httpx.AsyncClient) -> None:
    big = json.dumps({"name": "x" * 10_000_000})
    response = await client.post("/v1/contributors", content=big, headers=JSON)
    assert response.status_code == 413
    assert response.json()["detail"] == "Request body larger than 1048576 bytes"


async def test_streamed_body_over_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(30):
            yield b" " * 100_000

    response = await client.post("/api/agent/tasks", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


async def test_body_just_under_limit_is_parsed(client: httpx.AsyncClient) -> None:
    padded = json.dumps({"name": "ok"}) + " " * (1024 * 1024 - 20)
    response = await client.post("/v1/contributors", content=padded, headers=JSON)
    assert response.status_code == 201, response.text


async def test_nothing_was_stored_by_bad_input(client: httpx.AsyncClient) -> None:
    for method, url, kwargs, _, _ in CASES:
        await client.request(method, url, **kwargs)
    assert (await client.get("/v1/contributors")).json() == []
    assert (await client.get("/v1/assets")).json() == []
    assert (await client.get("/api/agent/tasks/count")).json()["total"] == 0
    assert (await client.get("/api/projects/count")).json() == {"count": 0}
