"""Migration 012's newer-wins functions compare migration 008's keys too: a replayed
record (a dual-write copy, a re-run backfill) whose only difference from the held row is
a key the database computed (008 filled them with SQL's lower()) rewrites that key to
the application's (app.canonical), by the single put and by the bulk import alike. A
replay that changes nothing still writes nothing, so imports stay repeatable."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
from app.canonical import fold, search_fold
from app.models import Contributor, Project
from app.stores.ports import GraphRecords

from tests.postgres.conftest import PgStores

T0 = datetime(2025, 1, 1, tzinfo=UTC)
STALE = ("UPDATE contributors SET email_key = 'stale@x.io'",
         "UPDATE projects SET description_lower = 'stale'")
KEYS = ("SELECT (SELECT email_key FROM contributors), "
        "(SELECT description_lower FROM projects)")


async def _owner(pg: PgStores) -> asyncpg.Connection:
    return await asyncpg.connect(pg.db.owner_dsn)


async def _stale_keys(pg: PgStores) -> None:
    conn = await _owner(pg)
    try:
        for statement in STALE:
            await conn.execute(statement)
        assert tuple(await conn.fetchrow(KEYS)) == ("stale@x.io", "stale")
    finally:
        await conn.close()


async def _keys(pg: PgStores) -> tuple[str, str]:
    conn = await _owner(pg)
    try:
        return tuple(await conn.fetchrow(KEYS))  # type: ignore[return-value]
    finally:
        await conn.close()


def _records() -> tuple[Contributor, Project]:
    person = Contributor(id=uuid4(), name="Ann", email="Straße@Example.io", created_at=T0,
                         updated_at=T0)
    project = Project(id=3, ecosystem="pypi", name="p", description="İstanbul Straße",
                      created_at=T0, updated_at=T0)
    return person, project


async def test_a_single_put_of_the_same_record_rewrites_a_stale_key(pg: PgStores) -> None:
    person, project = _records()
    await pg.graph.put_contributor(person)
    await pg.graph.put_project(project)
    expected = (fold(person.email or ""), search_fold(project.description))
    assert await _keys(pg) == expected
    await _stale_keys(pg)
    await pg.graph.put_contributor(person)
    await pg.graph.put_project(project)
    assert await _keys(pg) == expected
    assert (await pg.graph.get_contributor(person.id)).email == person.email


async def test_a_bulk_import_of_the_same_records_rewrites_stale_keys(pg: PgStores) -> None:
    person, project = _records()
    records = GraphRecords(projects=[project], contributors=[person])
    first = await pg.graph.import_graph(records)
    assert first.written["projects"] == 1 and first.written["contributors"] == 1
    expected = await _keys(pg)
    assert expected == (fold(person.email or ""), search_fold(project.description))
    await _stale_keys(pg)
    again = await pg.graph.import_graph(records)
    assert again.written["projects"] == 1 and again.written["contributors"] == 1
    assert await _keys(pg) == expected
    unchanged = await pg.graph.import_graph(records)
    assert unchanged.written["projects"] == 0 and unchanged.written["contributors"] == 0
