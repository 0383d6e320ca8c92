"""The door's rules are for requests: a record a journal holds from before a rule existed
(a document deeper than requests may now send, a 1e20 float jsonb would give back as an
integer) still replays, so an upgrade never stops a store from opening."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from app.canonical import MAX_JSON_DEPTH
from app.models import Contributor, ContributorCreate
from app.stores.memory.graph_store import MemoryGraphStore
from pydantic import ValidationError


def deep(levels: int) -> dict[str, object]:
    doc: dict[str, object] = {"leaf": 1e20}
    for _ in range(levels):
        doc = {"a": doc}
    return doc


async def test_a_stored_record_beyond_todays_rules_replays(tmp_path: Path) -> None:
    legacy = deep(MAX_JSON_DEPTH + 8)
    with pytest.raises(ValidationError):
        ContributorCreate(name="new", metadata=legacy)
    now = datetime.now(UTC)
    old = Contributor(id=uuid.uuid4(), name="old", metadata=legacy, created_at=now,
                      updated_at=now)
    store = await MemoryGraphStore.open(tmp_path, fsync="always")
    await store.put_contributor(old)
    await store.close()
    reopened = await MemoryGraphStore.open(tmp_path, fsync="always")
    try:
        assert await reopened.get_contributor(old.id) == old
    finally:
        await reopened.close()
