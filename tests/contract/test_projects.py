"""Projects, dependency edges and search, as docs/CONTRACT.md's graph-store section says."""

from __future__ import annotations

from typing import Any

import httpx

from tests.contract.helpers import error, names_field, ok, ts


async def put(client: httpx.AsyncClient, eco: str, name: str, **fields: object) -> Any:
    return ok(await client.put(f"/api/projects/{eco}/{name}", json=fields))


async def test_upsert_then_get_case_insensitive(client: httpx.AsyncClient) -> None:
    created = await put(client, "PyPI", "Requests", version="2.0", description="HTTP for humans")
    assert created["ecosystem"] == "pypi" and created["name"] == "requests"
    assert created["version"] == "2.0" and created["dependency_count"] == 0
    assert isinstance(created["id"], int)
    for eco, name in (("pypi", "requests"), ("PYPI", "REQUESTS"), ("PyPi", "rEqUeStS")):
        got = ok(await client.get(f"/api/projects/{eco}/{name}"))
        assert got == created


async def test_upsert_keeps_id_and_moves_updated_at(client: httpx.AsyncClient) -> None:
    first = await put(client, "npm", "left-pad", version="1.0")
    second = await put(client, "NPM", "Left-Pad", version="1.1", homepage_url="https://x.example")
    assert second["id"] == first["id"]
    assert second["version"] == "1.1" and second["homepage_url"] == "https://x.example"
    assert ts(second["created_at"]) == ts(first["created_at"])
    assert ts(second["updated_at"]) > ts(first["updated_at"])
    assert ok(await client.get("/api/projects/npm/left-pad")) == second


async def test_upsert_ignores_sent_dependency_count_and_key(client: httpx.AsyncClient) -> None:
    body = {"dependency_count": 99, "ecosystem": "other", "name": "other", "id": 5}
    project = ok(await client.put("/api/projects/cargo/serde", json=body))
    assert project["dependency_count"] == 0
    assert (project["ecosystem"], project["name"]) == ("cargo", "serde")


async def test_missing_project_is_404(client: httpx.AsyncClient) -> None:
    assert error(await client.get("/api/projects/pypi/nope"), 404) == "Project not found"


async def test_project_field_limits_are_422(client: httpx.AsyncClient) -> None:
    detail = error(await client.put("/api/projects/pypi/x", json={"version": "v" * 300}), 422)
    assert names_field(detail, "version")
    detail = error(await client.put(f"/api/projects/{'e' * 101}/x", json={}), 422)
    assert names_field(detail, "ecosystem")


async def test_count_projects(client: httpx.AsyncClient) -> None:
    assert ok(await client.get("/api/projects/count")) == {"count": 0}
    await put(client, "pypi", "a")
    await put(client, "pypi", "b")
    await put(client, "PYPI", "A")
    assert ok(await client.get("/api/projects/count")) == {"count": 2}


async def test_dependencies_idempotent_and_counted_both_ways(client: httpx.AsyncClient) -> None:
    await put(client, "pypi", "app")
    await put(client, "pypi", "lib")
    url = "/api/projects/pypi/app/dependencies"
    for _ in range(2):
        edge = ok(await client.post(url, json={"ecosystem": "PyPI", "name": "Lib"}), 201)
        assert (edge["to_ecosystem"], edge["to_name"]) == ("pypi", "lib")
    ok(await client.post(url, json={"ecosystem": "pypi", "name": "not-yet-there"}), 201)
    app = ok(await client.get("/api/projects/pypi/app"))
    assert app["dependency_count"] == 2
    assert ok(await client.get("/api/projects/pypi/lib"))["dependency_count"] == 0
    assert ok(await client.get("/api/projects/pypi/lib/dependents")) == {"count": 1}
    assert ok(await client.get("/api/projects/PYPI/LIB/dependents")) == {"count": 1}
    assert ok(await client.get("/api/projects/pypi/app/dependents")) == {"count": 0}
    assert ok(await client.get("/api/projects/pypi/not-yet-there/dependents")) == {"count": 1}
    assert ok(await client.get("/api/projects/count")) == {"count": 2}


async def test_dependency_from_missing_project_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/projects/pypi/ghost/dependencies", json={"ecosystem": "pypi", "name": "x"}
    )
    assert error(response, 404) == "Project not found"


async def test_dependency_body_is_validated(client: httpx.AsyncClient) -> None:
    await put(client, "pypi", "app")
    detail = error(await client.post("/api/projects/pypi/app/dependencies", json={}), 422)
    assert names_field(detail, "ecosystem") and names_field(detail, "name")


async def test_search_ranks_exact_then_prefix_then_rest(client: httpx.AsyncClient) -> None:
    await put(client, "pypi", "zz-requests-tools", description="helpers")
    await put(client, "pypi", "requests-oauth")
    await put(client, "npm", "requests")
    await put(client, "pypi", "requests", description="HTTP")
    await put(client, "pypi", "aaa", description="Wraps REQUESTS nicely")
    await put(client, "pypi", "unrelated", description="nothing")
    result = ok(await client.get("/api/search", params={"q": "  Requests "}))
    keys = [(r["name"], r["ecosystem"]) for r in result["results"]]
    assert keys == [
        ("requests", "npm"),
        ("requests", "pypi"),
        ("requests-oauth", "pypi"),
        ("aaa", "pypi"),
        ("zz-requests-tools", "pypi"),
    ]
    assert result["total"] == 5
    assert result["results"][3]["description"] == "Wraps REQUESTS nicely"
    assert set(result["results"][0]) == {"name", "ecosystem", "description"}


async def test_search_limit_and_total(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await put(client, "pypi", f"pkg{i}")
    result = ok(await client.get("/api/search", params={"q": "pkg", "limit": 2}))
    assert [r["name"] for r in result["results"]] == ["pkg0", "pkg1"]
    assert result["total"] == 5
    assert (
        len(ok(await client.get("/api/search", params={"q": "pkg", "limit": 100}))["results"]) == 5
    )


async def test_search_blank_query_is_empty(client: httpx.AsyncClient) -> None:
    await put(client, "pypi", "anything")
    for params in ({}, {"q": ""}, {"q": "   "}):
        assert ok(await client.get("/api/search", params=params)) == {"results": [], "total": 0}


async def test_search_limit_bounds(client: httpx.AsyncClient) -> None:
    for bad in (0, 101, -1, "many"):
        detail = error(await client.get("/api/search", params={"q": "x", "limit": bad}), 422)
        assert names_field(detail, "limit")
    ok(await client.get("/api/search", params={"q": "x", "limit": 1}))
    ok(await client.get("/api/search", params={"q": "x", "limit": 100}))
