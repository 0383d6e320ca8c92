"""Contributors, assets, contributions and distributions: the /v1 routes."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx

from tests.contract.helpers import error, money, names_field, newest_first, ok, oldest_first, ts

ZERO_UUID = "00000000-0000-0000-0000-000000000000"


async def contributor(client: httpx.AsyncClient, **fields: Any) -> Any:
    body = {"name": "Ada"} | fields
    return ok(await client.post("/v1/contributors", json=body), 201)


async def asset(client: httpx.AsyncClient, **fields: Any) -> Any:
    body = {"type": "CODE", "name": "engine"} | fields
    return ok(await client.post("/v1/assets", json=body), 201)


async def contribute(
    client: httpx.AsyncClient, who: str, what: str, cost: str, **metadata: Any
) -> Any:
    body = {"contributor_id": who, "asset_id": what, "cost_amount": cost, "metadata": metadata}
    return ok(await client.post("/v1/contributions", json=body), 201)


async def test_contributor_create_and_get(client: httpx.AsyncClient) -> None:
    made = await contributor(
        client,
        email="ada@example.com",
        hourly_rate="120.5",
        metadata={"team": "core"},
        github_username="ada",
    )
    uuid.UUID(made["id"])
    assert made["type"] == "HUMAN" and made["name"] == "Ada"
    assert money(made["hourly_rate"]) == Decimal("120.50")
    assert made["metadata"] == {"team": "core"}
    ts(made["created_at"]), ts(made["updated_at"])
    assert ok(await client.get(f"/v1/contributors/{made['id']}")) == made
    system = await contributor(client, type="SYSTEM", name="ci-bot")
    assert system["type"] == "SYSTEM" and system["email"] is None


async def test_contributor_email_unique_case_insensitive(client: httpx.AsyncClient) -> None:
    await contributor(client, email="Ada@Example.com")
    response = await client.post("/v1/contributors", json={"name": "B", "email": "ada@example.COM"})
    assert response.status_code == 409, response.text
    assert "email" in response.json()["detail"].lower()
    await contributor(client, name="no email 1")
    await contributor(client, name="no email 2")


async def test_contributor_errors(client: httpx.AsyncClient) -> None:
    assert (
        error(await client.get(f"/v1/contributors/{uuid.uuid4()}"), 404) == "Contributor not found"
    )
    detail = error(await client.get("/v1/contributors/not-a-uuid"), 422)
    assert names_field(detail, "contributor_id")
    detail = error(await client.post("/v1/contributors", json={"name": ""}), 422)
    assert names_field(detail, "name")
    detail = error(await client.post("/v1/contributors", json={"name": "x", "type": "ROBOT"}), 422)
    assert names_field(detail, "type")


async def test_contributor_list_newest_first_with_limit(client: httpx.AsyncClient) -> None:
    made = [await contributor(client, name=f"c{i}") for i in range(4)]
    listed = ok(await client.get("/v1/contributors"))
    assert {c["id"] for c in listed} == {c["id"] for c in made}
    assert newest_first(listed)
    assert listed[0]["id"] == made[-1]["id"]
    two = ok(await client.get("/v1/contributors", params={"limit": 2}))
    assert two == listed[:2]
    for bad in (0, 1001, -5):
        assert names_field(
            error(await client.get("/v1/contributors", params={"limit": bad}), 422), "limit"
        )
    ok(await client.get("/v1/contributors", params={"limit": 1000}))


async def test_asset_create_get_and_name_default(client: httpx.AsyncClient) -> None:
    made = await asset(client, description="the engine", metadata={"lang": "py"})
    assert made["type"] == "CODE" and made["name"] == "engine"
    assert money(made["total_cost"]) == Decimal("0")
    assert ok(await client.get(f"/v1/assets/{made['id']}")) == made
    long_description = "d" * 300
    unnamed = ok(
        await client.post("/v1/assets", json={"type": "DATA", "description": long_description}), 201
    )
    assert unnamed["name"] == long_description[:255]
    assert error(await client.get(f"/v1/assets/{uuid.uuid4()}"), 404) == "Asset not found"
    assert names_field(
        error(await client.post("/v1/assets", json={"type": "BOOK", "name": "x"}), 422), "type"
    )
    error(await client.post("/v1/assets", json={"type": "CODE"}), 422)


async def test_asset_list_newest_first(client: httpx.AsyncClient) -> None:
    made = [
        await asset(client, name=f"a{i}", type=t)
        for i, t in enumerate(("CODE", "MODEL", "CONTENT", "DATA"))
    ]
    listed = ok(await client.get("/v1/assets"))
    assert newest_first(listed) and listed[0]["id"] == made[-1]["id"]
    assert len(ok(await client.get("/v1/assets", params={"limit": 3}))) == 3
    error(await client.get("/v1/assets", params={"limit": 1001}), 422)


async def test_contribution_scores_and_totals(client: httpx.AsyncClient) -> None:
    who, what = (await contributor(client))["id"], (await asset(client))["id"]
    plain = await contribute(client, who, what, "10.00")
    assert plain["coherence_score"] == 0.5
    full = await contribute(
        client, who, what, "2.5", has_tests=True, has_docs=True, complexity="low"
    )
    assert full["coherence_score"] == 1.0
    assert (await contribute(client, who, what, "0", has_tests=True))["coherence_score"] == 0.7
    assert money(full["cost_amount"]) == Decimal("2.50")
    assert full["metadata"] == {"has_tests": True, "has_docs": True, "complexity": "low"}
    ts(full["timestamp"])
    assert money(ok(await client.get(f"/v1/assets/{what}"))["total_cost"]) == Decimal("12.50")
    assert ok(await client.get(f"/v1/contributions/{plain['id']}")) == plain


async def test_client_cannot_set_coherence(client: httpx.AsyncClient) -> None:
    who, what = (await contributor(client))["id"], (await asset(client))["id"]
    body = {"contributor_id": who, "asset_id": what, "cost_amount": "1", "coherence_score": 1.0}
    assert names_field(
        error(await client.post("/v1/contributions", json=body), 422), "coherence_score"
    )


async def test_contribution_errors(client: httpx.AsyncClient) -> None:
    who, what = (await contributor(client))["id"], (await asset(client))["id"]

    def body(c: str, a: str, cost: Any = "1.00") -> Any:
        return {"contributor_id": c, "asset_id": a, "cost_amount": cost}

    post = client.post
    assert (
        error(await post("/v1/contributions", json=body(ZERO_UUID, ZERO_UUID)), 404)
        == "Contributor not found"
    )
    assert (
        error(await post("/v1/contributions", json=body(who, ZERO_UUID)), 404) == "Asset not found"
    )
    for bad in ("-1", -0.01, "ten", None, "1.001"):
        detail = error(await post("/v1/contributions", json=body(who, what, bad)), 422)
        assert names_field(detail, "cost_amount"), (bad, detail)
    assert names_field(
        error(await post("/v1/contributions", json=body("nope", what)), 422), "contributor_id"
    )
    assert money(ok(await client.get(f"/v1/assets/{what}"))["total_cost"]) == Decimal("0")
    assert (
        error(await client.get(f"/v1/contributions/{uuid.uuid4()}"), 404)
        == "Contribution not found"
    )


async def test_contribution_listings(client: httpx.AsyncClient) -> None:
    ada, bob = (await contributor(client))["id"], (await contributor(client, name="Bob"))["id"]
    one, two = (await asset(client))["id"], (await asset(client, name="other"))["id"]
    made = [
        await contribute(client, ada, one, "1"),
        await contribute(client, bob, one, "2"),
        await contribute(client, ada, two, "3"),
        await contribute(client, ada, one, "4"),
    ]
    ids = [c["id"] for c in made]
    everything = ok(await client.get("/v1/contributions"))
    assert {c["id"] for c in everything} == set(ids)
    assert newest_first(everything, "timestamp") and everything[0]["id"] == ids[-1]
    assert len(ok(await client.get("/v1/contributions", params={"limit": 2}))) == 2
    error(await client.get("/v1/contributions", params={"limit": 0}), 422)
    of_asset = ok(await client.get(f"/v1/assets/{one}/contributions"))
    assert [c["id"] for c in of_asset] == [ids[0], ids[1], ids[3]] and oldest_first(of_asset)
    of_ada = ok(await client.get(f"/v1/contributors/{ada}/contributions"))
    assert [c["id"] for c in of_ada] == [ids[0], ids[2], ids[3]] and oldest_first(of_ada)
    assert ok(await client.get(f"/v1/assets/{two}/contributions"))[0]["id"] == ids[2]
    assert (
        error(await client.get(f"/v1/assets/{uuid.uuid4()}/contributions"), 404)
        == "Asset not found"
    )
    assert (
        error(await client.get(f"/v1/contributors/{uuid.uuid4()}/contributions"), 404)
        == "Contributor not found"
    )
    assert money(ok(await client.get(f"/v1/assets/{one}"))["total_cost"]) == Decimal("7")


async def test_distribution_worked_example(client: httpx.AsyncClient) -> None:
    ada, bob = (await contributor(client))["id"], (await contributor(client, name="Bob"))["id"]
    what = (await asset(client))["id"]
    await contribute(client, ada, what, "100.00", has_tests=True, has_docs=True)
    await contribute(client, bob, what, "100.00")
    made = ok(
        await client.post("/v1/distributions", json={"asset_id": what, "value_amount": "1000"}), 201
    )
    uuid.UUID(made["id"])
    ts(made["created_at"])
    assert made["asset_id"] == what and money(made["value_amount"]) == Decimal("1000")
    payouts = {p["contributor_id"]: money(p["amount"]) for p in made["payouts"]}
    assert payouts == {ada: Decimal("583.33"), bob: Decimal("416.67")}


async def test_distribution_without_contributions_and_errors(client: httpx.AsyncClient) -> None:
    what = (await asset(client))["id"]
    made = ok(
        await client.post("/v1/distributions", json={"asset_id": what, "value_amount": "50"}), 201
    )
    assert made["payouts"] == []
    response = await client.post(
        "/v1/distributions", json={"asset_id": str(uuid.uuid4()), "value_amount": "5"}
    )
    assert error(response, 404) == "Asset not found"
    detail = error(
        await client.post("/v1/distributions", json={"asset_id": what, "value_amount": "-5"}), 422
    )
    assert names_field(detail, "value_amount")
