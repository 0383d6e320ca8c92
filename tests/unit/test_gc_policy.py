"""app.gc_policy against CPython's real collector: a long full collection freezes its
survivors, a short one or a disabled policy does not, and every pause is exported."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from app import gc_policy
from app.metrics import REGISTRY


class Record:
    def __init__(self, i: int) -> None:
        self.fields = {"id": i, "tags": [i]}


def sample(name: str, generation: int | None = None) -> float:
    labels = {} if generation is None else {"generation": str(generation)}
    return REGISTRY.get_sample_value(name, labels) or 0.0


def full_pauses() -> float:
    return sample("storemigration_gc_pause_seconds_count", 2)


def freezes() -> float:
    return sample("storemigration_gc_freezes_total")


@pytest.fixture
def installed() -> Iterator[None]:
    gc.collect()
    gc.unfreeze()
    yield
    for callback in list(gc.callbacks):
        if isinstance(callback, gc_policy.GcPolicy):
            gc.callbacks.remove(callback)
    gc.unfreeze()


def test_a_long_full_collection_freezes_the_survivors(installed: None) -> None:
    gc_policy.install(freeze_after_ms=0.001)
    store = [Record(i) for i in range(200_000)]
    frozen_before, pauses = freezes(), full_pauses()
    gc.collect()
    assert full_pauses() == pauses + 1
    assert freezes() == frozen_before + 1
    assert gc.get_freeze_count() >= len(store)
    survivors = gc.get_freeze_count()
    del store  # reference counting still frees frozen objects
    assert gc.get_freeze_count() < survivors - 100_000


def test_a_short_collection_or_a_disabled_policy_freezes_nothing(installed: None) -> None:
    gc_policy.install(freeze_after_ms=10_000)
    gc.collect()
    assert gc.get_freeze_count() == 0
    gc_policy.install(freeze_after_ms=0)
    keep = [Record(i) for i in range(50_000)]
    gc.collect()
    assert gc.get_freeze_count() == 0
    assert len(keep) == 50_000
    assert sum(1 for c in gc.callbacks if isinstance(c, gc_policy.GcPolicy)) == 1


def test_pauses_are_observed_per_generation(installed: None) -> None:
    gc_policy.install(freeze_after_ms=0)
    sums = [sample("storemigration_gc_pause_seconds_sum", g) for g in range(3)]
    counts = [sample("storemigration_gc_pause_seconds_count", g) for g in range(3)]
    for g in range(3):
        gc.collect(g)
    after = [sample("storemigration_gc_pause_seconds_count", g) for g in range(3)]
    assert [a - c for a, c in zip(after, counts, strict=True)] == [1, 1, 1]
    assert all(sample("storemigration_gc_pause_seconds_sum", g) > sums[g] for g in range(3))


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_freezing_at_start_takes_the_loaded_records_and_no_garbage(installed: None) -> None:
    import weakref

    store = [Record(i) for i in range(50_000)]
    garbage = Cycle()
    gone = weakref.ref(garbage)
    del garbage  # a cycle: only the collector can free it
    before = freezes()
    frozen = gc_policy.freeze_loaded()
    assert gone() is None  # collected first, not frozen
    assert frozen == gc.get_freeze_count() >= len(store)
    assert freezes() == before + 1
    del store
    assert gc.get_freeze_count() < frozen - 25_000  # still freed by reference counting


def test_a_store_let_go_after_the_freeze_is_collected_once_thawed(installed: None) -> None:
    import weakref

    class Store:  # a store and its journal refer to each other, as the memory store's do
        def __init__(self) -> None:
            self.records = [Record(i) for i in range(10_000)]
            self.journal = {"capture": self}

    store = Store()
    gone = weakref.ref(store)
    gc_policy.freeze_loaded()
    del store
    gc.collect()
    assert gone() is not None  # frozen: the collector never looks at it
    gc_policy.thaw()
    gc.collect()
    assert gone() is None
