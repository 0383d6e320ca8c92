"""One pure-ASGI layer around the whole app: body limit, path check, request metrics,
last-resort 500.

It is a single layer because it sits on every request: a body over the limit is
refused with 413 before anything parses it (a declared Content-Length is checked up
front; a streamed body is counted as it arrives); every request is counted under its
route template, never its raw path, so metrics cardinality stays bounded; and an
exception nothing else handled becomes a generic 500 whose log line names the
exception class and the code path but never its message.
"""

from __future__ import annotations

import json
import logging
import traceback
from time import perf_counter
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import HTTP_DURATION, HTTP_REQUESTS

log = logging.getLogger("app.http")

MAX_BODY_BYTES = 1024 * 1024
TOO_LARGE = f"Request body larger than {MAX_BODY_BYTES} bytes"
INTERNAL = "Internal server error"


class BodyTooLarge(HTTPException):
    """Raised from receive(); FastAPI re-raises HTTPExceptions from body reading, so the
    exception handlers answer 413 whatever route was reading."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail=TOO_LARGE)


async def _send_json(send: Send, status: int, detail: Any) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


BAD_PATH = [{"loc": ["path"], "msg": "URL path is not valid UTF-8 after percent-decoding",
             "type": "value_error"}]


def _path_is_utf8(scope: Scope) -> bool:
    """Starlette decodes %FF%FE in a path to U+FFFD without a word; a key written that
    way would be stored as something the client never sent, so it is refused."""
    raw = scope.get("raw_path")
    if not raw or b"%" not in raw:
        return True
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


class GuardMiddleware:
    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                HTTP_REQUESTS.labels(method, route, str(status)),
                HTTP_DURATION.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        state = {"status": 500, "started": False, "received": 0}
        declared = _declared_length(scope)
        if declared is not None and (declared < 0 or declared > self.max_body):
            status = 413 if declared > 0 else 400
            await _send_json(send, status, TOO_LARGE if status == 413 else "Bad Content-Length")
            self._observe(scope["method"], "<rejected>", status, perf_counter() - start)
            return
        if not _path_is_utf8(scope):
            await _send_json(send, 422, BAD_PATH)
            self._observe(scope["method"], "<rejected>", 422, perf_counter() - start)
            return

        async def guarded_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracking_send)
        except BodyTooLarge:
            if not state["started"]:
                state["status"] = 413
                await _send_json(send, 413, TOO_LARGE)
        except Exception as e:
            route = getattr(scope.get("route"), "path", "unmatched")
            log.error(
                "unhandled %s in %s %s\n%s",
                type(e).__name__,
                scope["method"],
                route,
                "".join(traceback.format_tb(e.__traceback__)),
            )
            if not state["started"]:
                state["status"] = 500
                await _send_json(send, 500, INTERNAL)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self._observe(scope["method"], route, int(state["status"]), perf_counter() - start)
