"""Targeted repair: copy memory's record to PostgreSQL for each key a full verify
found missing or different, then re-verify exactly those keys.

Memory is the trusted store while it is primary (this repair does not run the other
way: with PostgreSQL primary, a rehydrate rebuilds memory). The copy is the replicas'
bulk import, newer-wins: a row PostgreSQL holds at a newer updated_at is left as it is,
and the re-verify then says so. total_cost is never copied from memory: a contribution
that differs is deleted in PostgreSQL and memory's copy imported (the trigger adds its
cost); then each touched asset's total is counted again from its own contribution rows
(a row deleted behind the router's back leaves its cost in the total: 003 has no delete
trigger), and those assets are re-verified too. Extra keys (PostgreSQL only) are
reported and left, unless `delete_extra`, children first.
"""

from __future__ import annotations

from typing import Any

from app.migration.chunked import MemoryLookup, verify_keys
from app.migration.keyed import KINDS, from_json, to_json
from app.stores.ports import AgentTaskReplica, GraphRecords, GraphReplica, RangeStore

REPAIRED = ("missing", "different")


async def repair(
    items: list[dict[str, Any]],
    lookup: MemoryLookup,
    postgres_graph: GraphReplica,
    postgres_tasks: AgentTaskReplica,
    ranges: RangeStore,
    *,
    delete_extra: bool = False,
    window: float = 0.0,
) -> dict[str, Any]:
    """Repair the report lines `items` ({kind, key, status}); the re-verify of the
    repaired keys decides `passed`."""
    order = {k: i for i, k in enumerate(KINDS)}
    wanted = sorted((i for i in items if i.get("status") in REPAIRED),
                    key=lambda i: order[i["kind"]])
    copied: dict[str, int] = {}
    gone: list[dict[str, Any]] = []
    assets: set[str] = set()
    for item in wanted:
        kind = item["kind"]
        key = from_json(kind, item["key"])
        record = await lookup.get(kind, key, None)
        if record is None:
            gone.append(item)
            continue
        if kind == "assets":
            assets.add(str(key))
        if kind == "tasks":
            await postgres_tasks.import_tasks([record])
        else:
            if kind == "contributions":
                held = await ranges.read_keys(kind, [to_json(kind, key)])
                assets |= {str(record.asset_id), *(str(h.asset_id) for h in held)}
                if held:
                    await ranges.delete_record(kind, to_json(kind, key))
            await postgres_graph.import_graph(GraphRecords(**{kind: [record]}))
        copied[kind] = copied.get(kind, 0) + 1
    for asset in sorted(assets):
        await ranges.recount_asset_total(asset)
    extras = [i for i in items if i.get("status") == "extra"]
    deleted = 0
    if delete_extra:
        for item in sorted(extras, key=lambda i: -order[i["kind"]]):
            if item["kind"] == "contributions":
                assets_of = {str(h.asset_id) for h in await ranges.read_keys(
                    "contributions", [item["key"]])}
            else:
                assets_of = set()
            deleted += await ranges.delete_record(item["kind"], item["key"])
            for asset in sorted(assets_of):
                await ranges.recount_asset_total(asset)
    checked = [(i["kind"], i["key"]) for i in wanted] + [("assets", a) for a in sorted(assets)]
    again = await verify_keys(checked, ranges, MemoryLookup(lookup.graph, lookup.tasks),
                              window=window)
    unresolved = [line for line in again["lines"] if line["status"] != "in_flight"]
    extra_after = await verify_keys([(i["kind"], i["key"]) for i in extras], ranges,
                                    MemoryLookup(lookup.graph, lookup.tasks), window=window)
    return {
        "passed": not unresolved,
        "repaired": copied,
        "repaired_total": sum(copied.values()),
        "not_in_memory": gone,
        "extra_count": len(extras),
        "extra_deleted": deleted,
        "extra_remaining": extra_after["counts"]["extra"],
        "reverify": again,
    }
