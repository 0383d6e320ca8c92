"""The app's plain routes served without FastAPI's per-request machinery, same endpoints.

With one worker (memory-trusted modes hold the store in one process) the service's
maximum rate is its CPU per request, and FastAPI + Starlette were ~30% of it: routing
through nested middleware, two AsyncExitStacks, a Request per layer, dependency solving
with a cache and telemetry contexts (docs/BENCHMARKS.md). For a route whose inputs are
plain this middleware does only what the route needs: it matches the path against the
app's routes in the app's order (so it picks the route Starlette would), binds path,
query and JSON-body arguments with FastAPI's own validators, calls the endpoint and
sends the Response it returns.

A route qualifies when its endpoint is a coroutine returning a Response, its
parameters are path, query or one JSON body, and its dependencies are coroutines that
take only the Request, or nothing (app.routers.deps). `app.dependency_overrides` is
honoured as FastAPI honours it: an override of that kind is called here instead of the
original; any other override sends the request to FastAPI. Every other route, and every
request whose input does not validate or is not a JSON object body, goes to FastAPI with
its body replayed, so errors keep FastAPI's exact shape. Exceptions from an endpoint go
through the app's exception handlers, as under FastAPI. FAST_PATH=false turns it off.

It reads FastAPI internals: the routes of included routers as `iter_route_contexts`
yields them (their effective Dependant and `_embed_body_fields`), and the argument
binders of fastapi.dependencies.utils. So FastAPI is pinned to one exact version
(pyproject.toml and api/requirements.txt), and tests/api/test_fastpath_guard.py fails
the moment any of these internals changes shape.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from re import Pattern
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import (
    get_dependant,
    request_body_to_args,
    request_params_to_args,
)
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.convertors import Convertor
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]
_JSON = b"application/json"
# Per HTTP method, every route accepting it in the app's order, with its lean form if any.
_Table = dict[str, list[tuple[Pattern[str], dict[str, Convertor[Any]], "LeanRoute | None"]]]


@dataclass(frozen=True)
class _Dependency:
    name: str | None
    call: Callable[..., Awaitable[Any]]
    request_param: str | None


@dataclass(frozen=True)
class LeanRoute:
    """What one qualifying route needs per request, taken once from its Dependant."""

    route: APIRoute
    request_param: str | None
    dependencies: tuple[_Dependency, ...]
    path_fields: Sequence[Any]
    query_fields: Sequence[Any]
    body_fields: list[Any]
    embed_body: bool


def _request_only(dep: Dependant) -> _Dependency | None:
    """The dependency's lean form when it is a coroutine taking the Request or nothing."""
    if not (dep.call and inspect.iscoroutinefunction(dep.call)):
        return None
    plain = not (
        dep.path_params or dep.query_params or dep.header_params or dep.cookie_params
        or dep.body_params or dep.dependencies or dep.websocket_param_name
        or dep.http_connection_param_name or dep.response_param_name
        or dep.background_tasks_param_name or dep.security_scopes_param_name
    )
    return _Dependency(dep.name, dep.call, dep.request_param_name) if plain else None


def lean_route(context: RouteContext) -> LeanRoute | None:
    """The route's lean form, or None when only FastAPI can serve it. `context` is the
    route as the app serves it (iter_route_contexts): for an included router's route it
    carries the effective Dependant, with the inclusion's dependencies."""
    route = context.original_route
    if not isinstance(route, APIRoute):
        return None
    d: Dependant = context.dependant
    try:
        returns = inspect.signature(route.endpoint, eval_str=True).return_annotation
    except (NameError, TypeError):  # an annotation only a type checker can resolve
        return None
    if not (
        inspect.iscoroutinefunction(route.endpoint)
        and isinstance(returns, type) and issubclass(returns, Response)
    ):
        return None
    if (d.header_params or d.cookie_params or len(d.body_params) > 1
            or d.websocket_param_name or d.http_connection_param_name
            or d.response_param_name or d.background_tasks_param_name
            or d.security_scopes_param_name):
        return None
    dependencies = tuple(_request_only(dep) for dep in d.dependencies)
    if any(dep is None for dep in dependencies):
        return None
    return LeanRoute(
        route=route,
        request_param=d.request_param_name,
        dependencies=tuple(dep for dep in dependencies if dep is not None),
        path_fields=d.path_params,
        query_fields=d.query_params,
        body_fields=list(d.body_params),
        embed_body=bool(context._embed_body_fields),
    )


def _json_content(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value == _JSON or value.startswith(_JSON + b";"))
    return False


class _Fallback(Exception):
    """The request needs FastAPI: invalid input, or a body that is not plain JSON."""


class FastPathMiddleware:
    """Innermost user middleware: serves qualifying routes, hands the rest to FastAPI."""

    def __init__(self, app: ASGIApp, owner: FastAPI, enabled: bool = True) -> None:
        self.app = app
        self.owner = owner
        self.enabled = enabled
        self._table: _Table | None = None
        self._overrides: dict[Callable[..., Any], _Dependency | None] = {}

    def _build(self) -> _Table:
        table: _Table = {}
        for context in iter_route_contexts(self.owner.router.routes):
            if isinstance(context.original_route, WebSocketRoute):
                continue
            if context.methods is None:
                return {}  # a Mount or a catch-all route: only Starlette's router can match it
            lean = lean_route(context)
            for method in context.methods:
                table.setdefault(method, []).append(
                    (context.path_regex, context.param_convertors, lean)
                )
        return table

    def _match(self, scope: Scope) -> tuple[LeanRoute, dict[str, Any]] | None:
        """The route Starlette would pick and its path parameters, if that route is lean."""
        if self._table is None:
            self._table = self._build()
        path = scope["path"]
        for regex, convertors, lean in self._table.get(scope["method"], ()):
            m = regex.match(path)
            if m is not None:
                if lean is None:
                    return None
                return lean, {k: convertors[k].convert(v) for k, v in m.groupdict().items()}
        return None

    def _dependencies(self, lean: LeanRoute) -> tuple[_Dependency, ...] | None:
        """The route's dependencies after app.dependency_overrides, or None when an
        override needs what only FastAPI provides (a sync call, sub-dependencies...)."""
        overrides = self.owner.dependency_overrides
        if not overrides:
            return lean.dependencies
        deps = []
        for dep in lean.dependencies:
            call = overrides.get(dep.call)
            if call is None:
                deps.append(dep)
                continue
            if call not in self._overrides:
                self._overrides[call] = _request_only(get_dependant(path="", call=call))
            swapped = self._overrides[call]
            if swapped is None:
                return None
            deps.append(_Dependency(dep.name, swapped.call, swapped.request_param))
        return tuple(deps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or not self.enabled or scope.get("root_path")
                or scope["method"] == "HEAD"):
            await self.app(scope, receive, send)
            return
        found = self._match(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        lean, params = found
        dependencies = self._dependencies(lean)
        if dependencies is None:
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        try:
            response = await self._serve(lean, dependencies, scope, params, receive, received)
        except _Fallback:
            await self.app(scope, _replay(received, receive), send)
            return
        await response(scope, receive, send)

    async def _serve(
        self, lean: LeanRoute, dependencies: tuple[_Dependency, ...], scope: Scope,
        params: dict[str, Any], receive: Receive, received: list[Message],
    ) -> Response:
        values, errors = request_params_to_args(lean.path_fields, params)
        if lean.query_fields:
            query, query_errors = request_params_to_args(
                lean.query_fields, QueryParams(scope["query_string"])
            )
            values.update(query)
            errors += query_errors
        if lean.body_fields:
            body, body_errors = await request_body_to_args(
                lean.body_fields, await _json_body(scope, receive, received), lean.embed_body
            )
            values.update(body)
            errors += body_errors
        if errors:
            raise _Fallback
        scope["route"] = lean.route
        scope["path_params"] = params
        scope["endpoint"] = lean.route.endpoint
        request = Request(scope, _replay(received, receive) if received else receive)
        if lean.request_param:
            values[lean.request_param] = request
        try:
            for dep in dependencies:
                result = await (dep.call(**{dep.request_param: request}) if dep.request_param
                                else dep.call())
                if dep.name is not None:
                    values[dep.name] = result
            response: Response = await lean.route.endpoint(**values)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            answer = handler(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        return response

    def _handler_for(self, exc: Exception) -> Handler | None:
        """The handler Starlette's ExceptionMiddleware would pick for `exc`. Handlers for
        Exception and 500 belong to ServerErrorMiddleware, outside this layer: an
        exception only they would handle propagates, as it does from FastAPI's router."""
        handlers: dict[Any, Any] = self.owner.exception_handlers
        if (isinstance(exc, HTTPException) and exc.status_code != 500
                and exc.status_code in handlers):
            return handlers[exc.status_code]  # type: ignore[no-any-return]
        for cls in type(exc).__mro__:
            if cls is not Exception and cls in handlers:
                return handlers[cls]  # type: ignore[no-any-return]
        return None


async def _json_body(scope: Scope, receive: Receive, received: list[Message]) -> Any:
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in received if m["type"] == "http.request")
    if not body or not _json_content(scope) or received[-1]["type"] != "http.request":
        raise _Fallback
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError) as e:  # FastAPI answers both, 422 or 400
        raise _Fallback from e
    if not isinstance(parsed, dict):
        raise _Fallback
    return parsed


def _replay(received: list[Message], receive: Receive) -> Receive:
    pending = list(received)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
