"""The ten reproducers of issue 15, each sent to the durable in-memory service, the
PostgreSQL service and the migration router (dual-write, half the reads from
PostgreSQL). Every backend gives the same answer, and afterwards a full verify of the
router finds memory and PostgreSQL identical: 0 missing, 0 different, no failed copy.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.parity.conftest import Trio

VOLATILE = {"id", "created_at", "updated_at", "timestamp", "contributor_id", "asset_id"}


def stable(document: Any) -> Any:
    """The answer without what each backend assigns itself (ids, timestamps)."""
    if isinstance(document, dict):
        return {k: stable(v) for k, v in document.items() if k not in VOLATILE}
    if isinstance(document, list):
        return [stable(v) for v in document]
    return document


def same_answer(answers: dict[str, httpx.Response], status: int) -> Any:
    """Every backend answered `status` with the same body (ids and times aside)."""
    got = {name: r.status_code for name, r in answers.items()}
    assert set(got.values()) == {status}, got
    bodies = {name: stable(r.json()) for name, r in answers.items()}
    first = bodies["memory"]
    for name, body in bodies.items():
        assert body == first, (name, body, first)
    return first


def names_field(answer: Any, field: str) -> None:
    locs = [".".join(str(p) for p in e["loc"]) for e in answer["detail"]]
    assert any(field in loc for loc in locs), locs


async def agree(trio: Trio) -> None:
    report = await trio.verify()
    assert report.missing_count == 0, report.as_dict()
    assert report.mismatches == 0, report.as_dict()
    assert trio.copy_failures() == 0


async def test_1_email_case_folding_is_one_rule(trio: Trio) -> None:
    for email in ("İ1@x.io", "i1@x.io", "ΑΣ@x.io"):
        same_answer(await trio.send("POST", "/v1/contributors",
                                    json={"name": "a", "email": email}), 201)
    for email in ("ασ@x.io", "ας@X.IO", "I1@X.IO"):
        answer = same_answer(await trio.send("POST", "/v1/contributors",
                                             json={"name": "b", "email": email}), 409)
        assert "email" in answer["detail"]
    await agree(trio)


async def test_2_total_cost_cannot_overflow(trio: Trio) -> None:
    big = "9999999999999999.99"
    ids: dict[str, dict[str, str]] = {}
    for name, c in trio.clients.items():
        person = (await c.post("/v1/contributors", json={"name": "p"})).json()["id"]
        asset = (await c.post("/v1/assets", json={"type": "CODE", "name": "a"})).json()["id"]
        ids[name] = {"contributor_id": person, "asset_id": asset}
        first = await c.post("/v1/contributions", json={**ids[name], "cost_amount": big})
        assert first.status_code == 201, first.text
    answers = {name: await c.post("/v1/contributions", json={**ids[name], "cost_amount": big})
               for name, c in trio.clients.items()}
    names_field(same_answer(answers, 422), "cost_amount")
    for name, c in trio.clients.items():
        asset = (await c.get(f"/v1/assets/{ids[name]['asset_id']}")).json()
        assert asset["total_cost"] == big
    too_precise = {name: await c.post("/v1/contributors", json={"name": "p",
                                                                "hourly_rate": "1.005"})
                   for name, c in trio.clients.items()}
    names_field(same_answer(too_precise, 422), "hourly_rate")
    await agree(trio)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_3_non_finite_numbers_are_refused(trio: Trio, literal: str) -> None:
    raw = '{"name": "n", "metadata": {"x": ' + literal + "}}"
    answers = await trio.send("POST", "/v1/contributors", content=raw,
                              headers={"content-type": "application/json"})
    names_field(same_answer(answers, 422), "metadata")
    task = '{"direction": "d", "task_type": "impl", "context": {"a": [' + literal + "]}}"
    answers = await trio.send("POST", "/api/agent/tasks", content=task,
                              headers={"content-type": "application/json"})
    names_field(same_answer(answers, 422), "context")
    await agree(trio)


@pytest.mark.parametrize("raw, field", [
    ('{"name": "s", "metadata": {"v": "\\udfff"}}', "metadata"),
    ('{"name": "s", "metadata": {"\\ud800key": 1}}', "metadata"),
    ('{"name": "\\udfff"}', "name"),
    ('{"name": "s", "metadata": %s}' % ('{"a": ' * 300 + "1" + "}" * 300), "metadata"),
    ('{"name": "s", "metadata": %s}' % ('{"a": ' * 1200 + "1" + "}" * 1200), "body"),
    ('{"name": "s", "metadata": {"a": %s}}' % ("[" * 300 + "]" * 300), "metadata"),
])
async def test_4_unstorable_strings_and_depths_are_422(trio: Trio, raw: str,
                                                        field: str) -> None:
    answers = await trio.send("POST", "/v1/contributors", content=raw.encode(),
                              headers={"content-type": "application/json"})
    names_field(same_answer(answers, 422), field)
    task = raw.replace('"name": "s", "metadata"', '"direction": "d", "task_type": "impl", '
                       '"context"')
    if task != raw:
        answers = await trio.send("POST", "/api/agent/tasks", content=task.encode(),
                                  headers={"content-type": "application/json"})
        assert {r.status_code for r in answers.values()} == {422}
    await agree(trio)


async def test_5_every_backend_holds_and_returns_the_same_value(trio: Trio) -> None:
    body = {"name": "z", "hourly_rate": "-0", "metadata": {
        "big": 1e20, "small": 1.5e-7, "neg0": -0.0, "int": 10**30, "f": 2.50,
        "zzz": 1, "a": {"yy": True, "b": None}, "list": [1e16, -0.0, 3]}}
    created = same_answer(await trio.send("POST", "/v1/contributors", json=body), 201)
    assert created["hourly_rate"] == "0.00"
    ids = {}
    for name, c in trio.clients.items():
        ids[name] = (await c.get("/v1/contributors?limit=1")).json()[0]["id"]
    reads = {name: await c.get(f"/v1/contributors/{ids[name]}")
             for name, c in trio.clients.items()}
    for _ in range(6):  # the router reads from either store: every read the same bytes
        again = await trio.clients["router"].get(f"/v1/contributors/{ids['router']}")
        assert again.content == reads["router"].content
    texts = {name: r.text.split('"metadata":', 1)[1].split(',"created_at"')[0]
             for name, r in reads.items()}
    assert len(set(texts.values())) == 1, texts
    task = same_answer(await trio.send("POST", "/api/agent/tasks", json={
        "direction": "d", "task_type": "impl", "context": body["metadata"]}), 201)
    assert task["context"] == created["metadata"]
    await agree(trio)


async def test_7_nul_in_the_search_query_is_one_answer(trio: Trio) -> None:
    names_field(same_answer(await trio.send("GET", "/api/search?q=a%00b"), 422), "q")
    same_answer(await trio.send("GET", "/api/search?q=%C4%B0stanbul"), 200)
    await agree(trio)


async def test_7_search_folds_case_the_same_everywhere(trio: Trio) -> None:
    for name, text in (("a", "İstanbul trip"), ("b", "STRASSE und Straße"),
                       ("c", "ΟΔΟΣ"), ("d", "plain")):
        same_answer(await trio.send("PUT", f"/api/projects/pypi/{name}",
                                    json={"description": text}), 200)
    for q in ("istanbul", "i̇stanbul", "İSTANBUL", "straße", "strasse", "οδος", "οδοσ", "ΟΔΟΣ"):
        answers = await trio.send("GET", "/api/search", params={"q": q})
        same_answer(answers, 200)
        found = {r.json()["total"] for r in answers.values()}
        assert len(found) == 1, (q, found)
    await agree(trio)


@pytest.mark.parametrize("target", ["@babel/core", "a/b", "x\\udfff"])
async def test_8_a_name_with_a_slash_is_refused(trio: Trio, target: str) -> None:
    same_answer(await trio.send("PUT", "/api/projects/npm/src", json={}), 200)
    answers = await trio.send(
        "POST", "/api/projects/npm/src/dependencies",
        content=('{"ecosystem": "npm", "name": "' + target + '"}').encode(),
        headers={"content-type": "application/json"})
    names_field(same_answer(answers, 422), "name")
    await agree(trio)


@pytest.mark.parametrize("path", ["/api/projects/npm/%FF%FE", "/api/projects/%C3/x",
                                  "/api/projects/npm/%FF%FE/dependents"])
async def test_8_invalid_utf8_in_a_path_is_refused(trio: Trio, path: str) -> None:
    answers = await trio.send("GET", path)
    names_field(same_answer(answers, 422), "path")
    if path.count("/") == 4:
        answers = await trio.send("PUT", path, json={})
        names_field(same_answer(answers, 422), "path")
    await agree(trio)


@pytest.mark.parametrize("content", [b'{"name": "\xff\xfe"}', b"\xef\xbb\xbf\xff"])
async def test_10_invalid_utf8_body_is_422(trio: Trio, content: bytes) -> None:
    answers = await trio.send("POST", "/v1/contributors", content=content,
                              headers={"content-type": "application/json"})
    names_field(same_answer(answers, 422), "body")
    await agree(trio)


async def test_10_openapi_declares_the_contracts_status_codes(trio: Trio) -> None:
    doc = (await trio.clients["memory"].get("/openapi.json")).json()
    by_id = [p for p in doc["paths"] if p.endswith("_id}") or p.endswith("{name}")]
    assert len(by_id) >= 5, by_id
    for path in by_id:
        if "get" in doc["paths"][path]:
            assert "404" in doc["paths"][path]["get"]["responses"], path
    assert "409" in doc["paths"]["/v1/contributors"]["post"]["responses"]
    patch = doc["paths"]["/api/agent/tasks/{task_id}"]["patch"]["responses"]
    assert {"400", "404", "409", "422"} <= set(patch)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method in ("post", "put", "patch") and not path.startswith("/api/admin"):
                assert "413" in op["responses"] and "422" in op["responses"], (path, method)
