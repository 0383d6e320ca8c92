"""The parity property: the same random inputs, hostile ones included (surrogates, NUL,
special-cased letters, NaN, huge and negative-zero numbers, deep documents, odd keys),
sent to the in-memory service, the PostgreSQL service and the migration router. Every
backend accepts or every backend refuses, with the same status, and what they store
reads back equal; afterwards a full verify finds memory and PostgreSQL identical.

Hypothesis drives a synchronous test; the services live on an event loop in a thread
of their own (the `portal`), so one set of stores serves every example.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness.postgres import PgDatabase
from tests.parity.conftest import Trio, open_trio
from tests.parity.test_reproducers import stable

T = TypeVar("T")
EXAMPLES = int(os.environ.get("PARITY_EXAMPLES", "60"))

SPECIAL = st.sampled_from(["İ", "ı", "Σ", "ς", "ß", "ẞ", "ǅ", "\x00", "\x1e", " ", "\u2028",
                           "\udfff", "\ud800", "/", "%", "_", "\\", "é", "\u0301", "\ufeff"])
CHAR = st.one_of(st.characters(codec="utf-8"), st.characters(categories=["Cs"]), SPECIAL)
TEXT = st.text(CHAR, max_size=12)
NAME = st.text(CHAR, min_size=1, max_size=8)
NUMBER = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e20, 1e16, -0.0, 1.5e-7, 5e-324, 2.50, 1e300]),
)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBER | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
DOCUMENT = st.dictionaries(TEXT, JSON, max_size=4)
MONEY = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=2,
                min_value=0, max_value=10**17).map(str),
    st.sampled_from(["-0", "0", "1e2", "9999999999999999.99", "1.005", "-1", "NaN", "1E+17"]),
)
EMAIL = st.builds(lambda a, b: f"{a}@{b}", NAME, NAME)


def escape(text: str) -> str:
    """Percent-encoded as UTF-8; a lone surrogate becomes bytes that are not UTF-8."""
    return quote(text, safe="", errors="surrogatepass")


def contributor() -> st.SearchStrategy[tuple[str, str, Any]]:
    body = st.fixed_dictionaries(
        {"name": NAME},
        optional={"email": st.one_of(st.none(), EMAIL, st.sampled_from(
            ["ΑΣ@x.io", "ας@x.io", "İ@x.io", "i̇@x.io", "STRASSE@x.io", "straße@x.io"])),
            "hourly_rate": MONEY, "metadata": DOCUMENT, "type": st.sampled_from(
                ["HUMAN", "SYSTEM", "robot"])})
    return st.tuples(st.just("POST"), st.just("/v1/contributors"), body)


def operation() -> st.SearchStrategy[tuple[str, str, Any]]:
    asset = st.fixed_dictionaries({"type": st.sampled_from(["CODE", "DATA", "x"])}, optional={
        "name": NAME, "description": TEXT, "metadata": DOCUMENT})
    task = st.fixed_dictionaries({"direction": NAME, "task_type": st.sampled_from(
        ["impl", "spec", "nope"])}, optional={"context": DOCUMENT})
    project = st.tuples(st.just("PUT"), st.builds(
        lambda e, n: f"/api/projects/{escape(e)}/{escape(n)}", NAME, NAME),
        st.fixed_dictionaries({}, optional={"description": TEXT, "version": TEXT}))
    dependency = st.tuples(st.just("POST"), st.just("/api/projects/npm/root/dependencies"),
                           st.fixed_dictionaries({"ecosystem": NAME, "name": NAME}))
    search = st.tuples(st.just("GET"), st.builds(lambda q: f"/api/search?q={escape(q)}", TEXT),
                       st.none())
    contribution = st.tuples(st.just("CONTRIBUTE"), st.just("/v1/contributions"),
                             st.fixed_dictionaries({"cost_amount": MONEY},
                                                   optional={"metadata": DOCUMENT}))
    return st.one_of(
        contributor(), st.tuples(st.just("POST"), st.just("/v1/assets"), asset),
        st.tuples(st.just("POST"), st.just("/api/agent/tasks"), task),
        project, dependency, search, contribution,
    )


class Portal:
    """An event loop in a thread: synchronous hypothesis examples run coroutines on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def services(
    pg_database: PgDatabase, pg_database_2: PgDatabase, tmp_path: Path
) -> Iterator[tuple[Portal, Trio]]:
    portal = Portal()
    opened = open_trio(pg_database, pg_database_2, tmp_path)
    trio = portal.run(opened.__aenter__())
    try:
        yield portal, trio
    finally:
        portal.run(opened.__aexit__(None, None, None))
        portal.close()


def encode(body: Any) -> bytes:
    """The body as a client would send it, NaN literals and lone surrogates included."""
    return json.dumps(body, allow_nan=True).encode()


async def send_everywhere(trio: Trio, method: str, url: str, body: Any,
                          parents: dict[str, dict[str, str]]) -> dict[str, Any]:
    answers = {}
    for name, client in trio.clients.items():
        if method == "CONTRIBUTE":
            if name not in parents:
                return {}
            content = encode({**body, **parents[name]})
            r = await client.post(url, content=content,
                                  headers={"content-type": "application/json"})
        elif body is None:
            r = await client.request(method, url)
        else:
            r = await client.request(method, url, content=encode(body),
                                     headers={"content-type": "application/json"})
        answers[name] = r
        if r.status_code == 201 and url == "/v1/contributors":
            parents.setdefault(name, {})["contributor_id"] = r.json()["id"]
        if r.status_code == 201 and url == "/v1/assets":
            parents.setdefault(name, {})["asset_id"] = r.json()["id"]
    return answers


def test_every_backend_accepts_or_refuses_alike_and_stores_alike(
    services: tuple[Portal, Trio],
) -> None:
    portal, trio = services
    parents: dict[str, dict[str, str]] = {}
    portal.run(send_everywhere(trio, "PUT", "/api/projects/npm/root", {}, parents))
    seen: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(op=operation())
    def one(op: tuple[str, str, Any]) -> None:
        method, url, body = op
        answers = portal.run(send_everywhere(trio, method, url, body, parents))
        if not answers:
            return
        statuses = {name: r.status_code for name, r in answers.items()}
        assert len(set(statuses.values())) == 1, (op, statuses,
                                                 {n: r.text[:300] for n, r in answers.items()})
        status = statuses["memory"]
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (op, answers["memory"].text[:300])
        if status < 300:
            bodies = {name: stable(r.json()) for name, r in answers.items()}
            assert bodies["postgres"] == bodies["memory"] == bodies["router"], (op, bodies)

    one()
    print(f"parity: {EXAMPLES} examples, statuses {dict(sorted(seen.items()))}")
    assert len(seen) >= 2, seen  # both accepted and refused inputs were exercised
    report = portal.run(trio.verify())
    assert report.missing_count == 0 and report.mismatches == 0, report.as_dict()
    assert trio.copy_failures() == 0
