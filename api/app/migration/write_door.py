"""The door in front of one store's writes: how many are in flight, and a way to hold
new ones while those finish.

The migration router counts every write through it (app.migration.router);
a live change of the store the router trusts (app.migration.switches) closes it, so the
mode swaps with no write in flight: none starts under one trusted store and copies
under the other. New writes wait (they are not refused) for the length of the drain.
"""

from __future__ import annotations

import asyncio


class WriteDoor:
    """The writes in flight on one store, and a door that a change of trusted store
    closes: new writes wait at it while the ones in flight finish."""

    def __init__(self) -> None:
        self.in_flight = 0
        self._closed: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None

    @property
    def closed(self) -> bool:
        return self._closed is not None

    async def enter(self) -> None:
        while self._closed is not None:
            await self._closed.wait()
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if self._idle is not None and not self.in_flight:
            self._idle.set()

    async def close(self, timeout: float) -> None:  # noqa: ASYNC109 - the drain's own limit
        """Hold new writes and wait for the ones in flight; after `timeout` seconds the
        door opens again and TimeoutError is raised."""
        if self._closed is not None:
            raise RuntimeError("the door is already closed")
        self._closed = asyncio.Event()
        if not self.in_flight:
            return
        self._idle = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except BaseException:
            self.open()
            raise
        finally:
            self._idle = None

    def open(self) -> None:
        closed, self._closed = self._closed, None
        if closed is not None:
            closed.set()
