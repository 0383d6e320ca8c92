"""pair_range, the chunk pairing both ways of the full verify share (in the API, and
--compare-here in the script): walked chunk by chunk over any two key sets, every key of
either side is paired exactly once, with its own records, and no chunk takes more than
`limit` records of a side."""

from __future__ import annotations

from types import SimpleNamespace

from app.migration.chunked import pair_range
from hypothesis import given
from hypothesis import strategies as st

keys = st.sets(st.text(alphabet="abcdef", min_size=1, max_size=3), max_size=40)


def _after(records: list[SimpleNamespace], start: str | None, limit: int
           ) -> list[SimpleNamespace]:
    return [r for r in records if start is None or r.id > start][:limit]


@given(keys, keys, st.integers(min_value=1, max_value=7))
def test_every_key_is_paired_once_and_no_chunk_exceeds_the_limit(
    mine: set[str], theirs: set[str], limit: int
) -> None:
    memory = sorted((SimpleNamespace(id=k, side="memory") for k in mine), key=lambda r: r.id)
    postgres = sorted((SimpleNamespace(id=k, side="postgres") for k in theirs),
                      key=lambda r: r.id)
    seen: dict[str, tuple[object, object]] = {}
    start: str | None = None
    for _ in range(len(mine | theirs) + 2):
        upto, pairs = pair_range("tasks", limit, _after(memory, start, limit),
                                 _after(postgres, start, limit))
        assert sum(m is not None for m, _ in pairs.values()) <= limit
        assert sum(t is not None for _, t in pairs.values()) <= limit
        assert not seen.keys() & pairs.keys()
        seen |= pairs
        if upto is None:
            break
        assert start is None or upto > start  # always moves on
        start = upto
    else:
        raise AssertionError("the walk did not end")
    assert seen.keys() == mine | theirs
    for key, (m, t) in seen.items():
        assert (m is not None) == (key in mine) and (t is not None) == (key in theirs)
        assert m is None or (m.id, m.side) == (key, "memory")
        assert t is None or (t.id, t.side) == (key, "postgres")
