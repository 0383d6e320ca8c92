"""FastAPI dependencies that hand routers the stores and settings of the running app.

Routers see the GraphStore and AgentTaskStore protocols and nothing else, so the same
router serves the in-memory stores, PostgreSQL or the migration router unchanged. The
dependencies are coroutines: FastAPI runs a plain `def` dependency in a worker thread,
a thread hand-off on every request that cost 15-45% of the maximum request rate.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter

from app.container import Container
from app.errors import NotFoundError
from app.stores.ports import AgentTaskStore, GraphStore


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def get_graph(request: Request) -> GraphStore:
    container: Container = request.app.state.container
    return container.graph_store


async def get_tasks(request: Request) -> AgentTaskStore:
    container: Container = request.app.state.container
    return container.task_store


Graph = Annotated[GraphStore, Depends(get_graph)]
Tasks = Annotated[AgentTaskStore, Depends(get_tasks)]
Current = Annotated[Container, Depends(get_container)]

JSON = "application/json"


class ErrorMessage(BaseModel):
    """The contract's error body for 400, 404 and 409: {"detail": "what went wrong"}."""

    detail: str


def errors(**codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the contract's errors: errors(e404="Task not found")."""
    return {int(code[1:]): {"model": ErrorMessage, "description": text}
            for code, text in codes.items()}


BODY_LIMIT = errors(e413="Request body larger than 1 MiB (app.middleware.MAX_BODY_BYTES)")


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    """A model serialized once by pydantic (skips FastAPI's re-validation of the result)."""
    return Response(model.model_dump_json(), status_code=status_code, media_type=JSON)


def found_response(record: BaseModel | None, detail: str) -> Response:
    """The record as a response, or the contract's 404 with `detail`."""
    if record is None:
        raise NotFoundError(detail)
    return model_response(record)


_ANY: TypeAdapter[Any] = TypeAdapter(Any)


def json_response(document: dict[str, Any] | list[Any]) -> Response:
    """A document or a list of records (counts, listings) serialized once by pydantic."""
    return Response(_ANY.dump_json(document), media_type=JSON)
