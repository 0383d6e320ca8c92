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
take only the Request (app.routers.deps). Every other route, and every request whose
input does not validate or is not a JSON object body, goes to FastAPI with its body
replayed, so errors keep FastAPI's
exact shape. Exceptions from an endpoint go through the app's exception handlers, as
under FastAPI. FAST_PATH=false turns it off (A/B runs, tests).
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
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]
_JSON = b"application/json"
# Per HTTP method, every route accepting it in the app's order, with its lean form if any.
_Table = dict[str, list[tuple[Pattern[str], Route, "LeanRoute | None"]]]


@dataclass(frozen=True)
class _Dependency:
    name: str | None
    call: Callable[..., Awaitable[Any]]
    request_param: str


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
    if not (dep.call and inspect.iscoroutinefunction(dep.call) and dep.request_param_name):
        return None
    plain = not (
        dep.path_params or dep.query_params or dep.header_params or dep.cookie_params
        or dep.body_params or dep.dependencies or dep.websocket_param_name
        or dep.http_connection_param_name or dep.response_param_name
        or dep.background_tasks_param_name or dep.security_scopes_param_name
    )
    return _Dependency(dep.name, dep.call, dep.request_param_name) if plain else None


def lean_route(route: BaseRoute) -> LeanRoute | None:
    """The route's lean form, or None when only FastAPI can serve it."""
    if not isinstance(route, APIRoute):
        return None
    d = route.dependant
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
        embed_body=bool(getattr(route, "_embed_body_fields", True)),
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

    def _build(self) -> _Table:
        table: _Table = {}
        for route in self.owner.router.routes:
            if isinstance(route, WebSocketRoute):
                continue
            if not isinstance(route, Route) or route.methods is None:
                return {}  # a Mount or a catch-all route: only Starlette's router can match it
            lean = lean_route(route)
            for method in route.methods:
                table.setdefault(method, []).append((route.path_regex, route, lean))
        return table

    def _match(self, scope: Scope) -> tuple[LeanRoute, dict[str, Any]] | None:
        """The route Starlette would pick and its path parameters, if that route is lean."""
        if self._table is None:
            self._table = self._build()
        path = scope["path"]
        for regex, route, lean in self._table.get(scope["method"], ()):
            m = regex.match(path)
            if m is not None:
                if lean is None:
                    return None
                return lean, {k: route.param_convertors[k].convert(v)
                              for k, v in m.groupdict().items()}
        return None

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
        received: list[Message] = []
        try:
            response = await self._serve(lean, scope, params, receive, received)
        except _Fallback:
            await self.app(scope, _replay(received, receive), send)
            return
        await response(scope, receive, send)

    async def _serve(
        self, lean: LeanRoute, scope: Scope, params: dict[str, Any],
        receive: Receive, received: list[Message],
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
            for dep in lean.dependencies:
                result = await dep.call(**{dep.request_param: request})
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
