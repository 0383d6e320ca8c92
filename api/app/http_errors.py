"""How failures become HTTP answers: one JSON shape, {"detail": ...}, for every error.

StoreErrors carry a client-safe detail and their own status code. Validation errors
keep FastAPI's list of {loc, msg, type} (loc names the field) but drop the echoed
input, which could be a megabyte of what the client just sent. Anything unexpected is
handled by app.middleware: logged by class name and a 500 with a generic message, since
an exception's text may carry a connection string.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import FieldError, InvalidDataError, StoreError


async def store_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreError)
    if isinstance(exc, InvalidDataError):  # 422 keeps one shape: FastAPI's list of fields
        loc = list(exc.loc) if isinstance(exc, FieldError) else ["body"]
        field = {"loc": loc, "msg": exc.detail, "type": "value_error"}
        return JSONResponse({"detail": [field]}, status_code=422)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


async def unparsable_body(request: Request, exc: Exception) -> Response:
    """FastAPI answers 400 "There was an error parsing the body" when the body is not
    UTF-8 or nests deeper than the JSON decoder goes; the contract says 422, naming the
    body, as for any other body that is not JSON."""
    assert isinstance(exc, StarletteHTTPException)
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError | RecursionError):
        reason = "not UTF-8" if isinstance(cause, UnicodeDecodeError) else "nested too deeply"
        detail = [{"loc": ["body"], "msg": f"Request body is not valid JSON: {reason}",
                   "type": "json_invalid"}]
        return JSONResponse({"detail": detail}, status_code=422)
    return await http_exception_handler(request, exc)


def _message(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid value"))
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error")
        return f"Request body is not valid JSON: {reason}" if reason else msg
    return msg


def _loc(error: dict[str, Any]) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in error.get("loc", ())]


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"loc": _loc(e), "msg": _message(e), "type": str(e.get("type", "value_error"))}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(StoreError, store_error)
    app.add_exception_handler(StarletteHTTPException, unparsable_body)
    app.add_exception_handler(RequestValidationError, validation_error)
