"""Store errors that every backend raises and the HTTP layer maps to status codes.

Adapters translate their own failures (asyncpg exceptions, journal I/O) into these, so
routers stay backend-agnostic and no driver message, which may carry a connection
string, ever reaches a client.
"""

from __future__ import annotations

from decimal import Decimal

from app.canonical import MONEY_MAX, TOTAL_OVERFLOW


class StoreError(Exception):
    """Base class. `detail` is safe to show a client."""

    status_code = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(StoreError):
    status_code = 404


class ConflictError(StoreError):
    status_code = 409


class InvalidTransitionError(ConflictError):
    def __init__(self, current: str, requested: str) -> None:
        super().__init__(f"Invalid status transition from '{current}' to '{requested}'")
        self.current = current
        self.requested = requested


class InvalidDataError(StoreError):
    """A value the database's constraints refused that request validation let through."""

    status_code = 422


class StoreUnavailableError(StoreError):
    """The backend could not serve the call in time (pool exhausted, server down)."""

    status_code = 503


class StoreLockedError(StoreError):
    """Another process holds the store's exclusive lock (memory's journal)."""

    status_code = 409


class FieldError(InvalidDataError):
    """A request field every backend refuses for a reason only the store can see (an
    asset's total that would overflow); answered in FastAPI's 422 shape, naming the field."""

    def __init__(self, loc: tuple[str, ...], detail: str) -> None:
        super().__init__(detail)
        self.loc = loc


def total_overflow() -> FieldError:
    """The answer, on every backend, to a contribution that would raise its asset's
    total_cost past what numeric(18, 2) holds."""
    return FieldError(("body", "cost_amount"), f"cost_amount {TOTAL_OVERFLOW}")


def check_contribution_total(total: Decimal) -> None:
    if total > MONEY_MAX:
        raise total_overflow()


class StartupRefused(RuntimeError):
    """The service must not serve: a reconciliation it needs cannot run, or PostgreSQL,
    which this configuration trusts, cannot be reached or has a schema this code refuses.
    Raised from the lifespan, it stops the process with a non-zero exit."""
