"""Projects, their dependency edges and search: /api/projects and /api/search.

Keys are lowercased here as well as in the stores, so a lookup is case-insensitive on
every backend whatever the backend does with case.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import AfterValidator

from app.canonical import project_key
from app.models import Dependency, DependencyIn, Project, ProjectUpsert, SearchResult
from app.routers.deps import (
    BODY_LIMIT,
    Graph,
    errors,
    found_response,
    json_response,
    model_response,
)

router = APIRouter(tags=["projects"], responses=BODY_LIMIT)

NO_NUL = r"^[^\x00]*$"
EcosystemPath = Annotated[
    str, Path(min_length=1, max_length=100, pattern=NO_NUL), AfterValidator(project_key(100))
]
NamePath = Annotated[
    str, Path(min_length=1, max_length=255, pattern=NO_NUL), AfterValidator(project_key(255))
]
PROJECT_NOT_FOUND = errors(e404="Project not found")


@router.get("/api/projects/count", response_model=dict[str, int])
async def count_projects(graph: Graph) -> Response:
    return json_response({"count": await graph.count_projects()})


@router.get("/api/projects/{ecosystem}/{name}", response_model=Project, responses=PROJECT_NOT_FOUND)
async def get_project(ecosystem: EcosystemPath, name: NamePath, graph: Graph) -> Response:
    project = await graph.get_project(ecosystem.lower(), name.lower())
    return found_response(project, "Project not found")


@router.put("/api/projects/{ecosystem}/{name}", response_model=Project)
async def upsert_project(
    ecosystem: EcosystemPath, name: NamePath, data: ProjectUpsert, graph: Graph
) -> Response:
    return model_response(await graph.upsert_project(ecosystem.lower(), name.lower(), data))


@router.post(
    "/api/projects/{ecosystem}/{name}/dependencies",
    status_code=201,
    response_model=Dependency,
    responses=PROJECT_NOT_FOUND,
)
async def add_dependency(
    ecosystem: EcosystemPath, name: NamePath, target: DependencyIn, graph: Graph
) -> Response:
    edge = await graph.add_dependency(
        ecosystem.lower(), name.lower(), target.ecosystem, target.name
    )
    return model_response(edge, 201)


@router.get("/api/projects/{ecosystem}/{name}/dependents")
async def count_dependents(
    ecosystem: EcosystemPath, name: NamePath, graph: Graph
) -> dict[str, int]:
    return {"count": await graph.count_dependents(ecosystem.lower(), name.lower())}


@router.get("/api/search", response_model=SearchResult)
async def search(
    graph: Graph,
    q: Annotated[str, Query(max_length=1000, pattern=NO_NUL)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    return model_response(await graph.search(q, limit))
