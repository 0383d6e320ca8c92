"""Contributors, assets, contributions and value distributions: the /v1 routes.

The HTTP layer computes what the contract says the client never sets: a
contribution's coherence score (from its metadata) and a distribution's payouts (from
the asset's contributions), with the pure rules in app.domain.graph, so every backend
agrees on them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.domain.graph import coherence_score, compute_payouts
from app.errors import NotFoundError
from app.models import (
    Asset,
    AssetCreate,
    Contribution,
    ContributionCreate,
    Contributor,
    ContributorCreate,
    Distribution,
    DistributionCreate,
)
from app.routers.deps import (
    BODY_LIMIT,
    Graph,
    errors,
    found_response,
    json_response,
    model_response,
)

router = APIRouter(prefix="/v1", tags=["ledger"], responses=BODY_LIMIT)

Limit = Annotated[int, Query(ge=1, le=1000)]


def _missing(what: str) -> NotFoundError:
    return NotFoundError(f"{what} not found")


@router.post("/contributors", status_code=201, response_model=Contributor,
             responses=errors(e409="Contributor with this email already exists"))
async def create_contributor(data: ContributorCreate, graph: Graph) -> Response:
    return model_response(await graph.create_contributor(data), 201)


@router.get("/contributors", response_model=list[Contributor])
async def list_contributors(graph: Graph, limit: Limit = 100) -> Response:
    return json_response(await graph.list_contributors(limit))


@router.get("/contributors/{contributor_id}", response_model=Contributor,
            responses=errors(e404="Contributor not found"))
async def get_contributor(contributor_id: UUID, graph: Graph) -> Response:
    return found_response(await graph.get_contributor(contributor_id), "Contributor not found")


@router.get("/contributors/{contributor_id}/contributions", response_model=list[Contribution],
            responses=errors(e404="Contributor not found"))
async def contributor_contributions(contributor_id: UUID, graph: Graph) -> Response:
    return json_response(await graph.get_contributor_contributions(contributor_id))


@router.post("/assets", status_code=201, response_model=Asset)
async def create_asset(data: AssetCreate, graph: Graph) -> Response:
    return model_response(await graph.create_asset(data), 201)


@router.get("/assets", response_model=list[Asset])
async def list_assets(graph: Graph, limit: Limit = 100) -> Response:
    return json_response(await graph.list_assets(limit))


@router.get("/assets/{asset_id}", response_model=Asset, responses=errors(e404="Asset not found"))
async def get_asset(asset_id: UUID, graph: Graph) -> Response:
    return found_response(await graph.get_asset(asset_id), "Asset not found")


@router.get("/assets/{asset_id}/contributions", response_model=list[Contribution],
            responses=errors(e404="Asset not found"))
async def asset_contributions(asset_id: UUID, graph: Graph) -> Response:
    return json_response(await graph.get_asset_contributions(asset_id))


@router.post("/contributions", status_code=201, response_model=Contribution,
             responses=errors(e404="Contributor not found, or Asset not found"))
async def create_contribution(data: ContributionCreate, graph: Graph) -> Response:
    contribution = await graph.create_contribution(data, coherence_score(data.metadata))
    return model_response(contribution, 201)


@router.get("/contributions", response_model=list[Contribution])
async def list_contributions(graph: Graph, limit: Limit = 100) -> Response:
    return json_response(await graph.list_contributions(limit))


@router.get("/contributions/{contribution_id}", response_model=Contribution,
            responses=errors(e404="Contribution not found"))
async def get_contribution(contribution_id: UUID, graph: Graph) -> Response:
    return found_response(await graph.get_contribution(contribution_id), "Contribution not found")


@router.post("/distributions", status_code=201, response_model=Distribution,
             responses=errors(e404="Asset not found"))
async def create_distribution(data: DistributionCreate, graph: Graph) -> Response:
    if await graph.get_asset(data.asset_id) is None:
        raise _missing("Asset")
    contributions = await graph.get_asset_contributions(data.asset_id)
    distribution = Distribution(
        id=uuid4(),
        asset_id=data.asset_id,
        value_amount=data.value_amount,
        payouts=compute_payouts(contributions, data.value_amount),
        created_at=datetime.now(UTC),
    )
    return model_response(distribution, 201)
