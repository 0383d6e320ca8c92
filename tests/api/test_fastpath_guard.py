"""The FastAPI internals app.fastpath relies on are the ones this test finds: FastAPI is
pinned to one exact version in pyproject.toml and in the lock, and every private name,
signature and field the fast path reads is checked here, so an upgrade that changes any
of them fails this test before it can change an answer (test_fastpath.py then compares
the answers themselves)."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path
from re import Pattern
from typing import Annotated

import fastapi
from app.fastpath import lean_route
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant, request_body_to_args, request_params_to_args
from fastapi.responses import Response
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[2]
PINNED = re.compile(r"^fastapi==(\S+)$")


def test_fastapi_is_pinned_to_the_installed_version_in_pyproject_and_the_lock() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    in_pyproject = [m.group(1) for d in deps if (m := PINNED.match(d))]
    lock = (ROOT / "api" / "requirements.txt").read_text().splitlines()
    in_lock = [m.group(1) for line in lock if (m := PINNED.match(line.strip()))]
    assert in_pyproject == in_lock == [fastapi.__version__]


def _params(call: object) -> list[str]:
    return list(inspect.signature(call).parameters)  # type: ignore[arg-type]


def test_the_argument_binders_keep_their_signatures() -> None:
    assert _params(request_params_to_args) == ["fields", "received_params"]
    assert _params(request_body_to_args) == ["body_fields", "received_body",
                                             "embed_body_fields"]
    assert inspect.iscoroutinefunction(request_body_to_args)
    assert not inspect.iscoroutinefunction(request_params_to_args)
    assert {"path", "call"} <= set(_params(get_dependant))


def test_dependant_keeps_the_fields_the_fast_path_reads() -> None:
    read = {"call", "name", "path_params", "query_params", "header_params", "cookie_params",
            "body_params", "dependencies", "request_param_name", "websocket_param_name",
            "http_connection_param_name", "response_param_name",
            "background_tasks_param_name", "security_scopes_param_name"}

    async def dep(request: Request) -> int:
        return 1

    dependant = get_dependant(path="/", call=dep)
    assert isinstance(dependant, Dependant)
    assert read <= {name for name in dir(dependant) if not name.startswith("__")}
    assert dependant.request_param_name == "request"


class Body(BaseModel):
    name: str


async def included_dependency() -> None:
    return None


async def route_dependency(request: Request) -> str:
    return "x"


def test_included_routes_are_seen_through_their_effective_context() -> None:
    router = APIRouter(prefix="/r")

    @router.put("/items/{item_id}")
    async def put_item(
        item_id: int, body: Body, dep: Annotated[str, Depends(route_dependency)]
    ) -> Response:
        return Response()

    app = FastAPI()
    app.include_router(router, dependencies=[Depends(included_dependency)])
    contexts = [c for c in iter_route_contexts(app.router.routes)
                if isinstance(c.original_route, APIRoute)]
    assert len(contexts) == 1
    context = contexts[0]
    assert isinstance(context, RouteContext)
    assert context.path == "/r/items/{item_id}" and context.methods == {"PUT"}
    assert isinstance(context.path_regex, Pattern)
    assert context.path_regex.match("/r/items/7")
    assert context.param_convertors["item_id"].convert("7") == "7"
    assert isinstance(context._embed_body_fields, bool)
    dependant = context.dependant
    assert isinstance(dependant, Dependant) and dependant.call is put_item
    # the inclusion's dependency is in the effective Dependant, so the fast path calls it
    assert [d.call for d in dependant.dependencies] == [included_dependency, route_dependency]
    lean = lean_route(context)
    assert lean is not None
    assert [d.call for d in lean.dependencies] == [included_dependency, route_dependency]
    assert [f.name for f in lean.body_fields] == ["body"]
    assert getattr(context, "dependency_overrides_provider", None) is app
