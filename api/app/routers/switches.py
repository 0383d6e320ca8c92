"""The live switches over HTTP: GET and PUT /api/admin/switches.

The operator (and the rollback script) change a store's migration mode through this
instead of restarting the process; app.migration.switches does the work. Same
authentication as the other admin routes (app.routers.admin.require_admin). PUT
answers once the switches took effect, drains and rebuilds included: 200 with the
switches in effect, 422 naming the switch a set breaks a rule with, 503 (or 409 when
another process holds memory's journal) when a valid set could not take effect, with
the store and what was left in the detail.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.exceptions import RequestValidationError

from app.migration.switch_models import (
    SwitchDocument,
    SwitchFailed,
    SwitchRejected,
    SwitchRequest,
    SwitchResult,
)
from app.migration.switches import SwitchBoard
from app.migration.wiring import MigrationState
from app.routers.admin import Admin

router = APIRouter(prefix="/api/admin", tags=["admin"])


def _board(state: MigrationState) -> SwitchBoard:
    if state.switches is None:
        raise HTTPException(503, "live switches not initialised")
    return state.switches


@router.get("/switches")
async def get_switches(state: Admin) -> SwitchDocument:
    """Each store's switches in effect, the revision and the fingerprint."""
    return _board(state).document()


@router.put("/switches")
async def put_switches(state: Admin, body: SwitchRequest) -> SwitchResult:
    """Apply a switch set (every store through `all`, or per store) and answer with the
    switches in effect once it took effect."""
    try:
        return await _board(state).apply(body)
    except SwitchRejected as e:
        raise RequestValidationError(e.errors) from None
    except SwitchFailed as e:
        raise HTTPException(e.status_code, e.detail) from None
