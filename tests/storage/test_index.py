"""The offset index against a sorted-list oracle, and its rebuild rule."""

import bisect
import os

from hypothesis import given
from hypothesis import strategies as st

from storage.index import ENTRY, OffsetIndex, encode_entries


def increasing_entries(draw_gaps):
    rel, pos, entries = 0, 16, []
    for d_rel, d_pos in draw_gaps:
        entries.append((rel, pos))
        rel += d_rel
        pos += d_pos
    return entries


gaps = st.lists(st.tuples(st.integers(1, 1000), st.integers(1, 100_000)), max_size=300)


@given(gaps, st.lists(st.integers(0, 400_000), max_size=50))
def test_index_floor_matches_bisect(tmp_path_factory, gap_list, queries):
    entries = increasing_entries(gap_list)
    path = str(tmp_path_factory.mktemp("idx") / "0.index")
    index = OffsetIndex(path, entries, len(entries) + 10)
    keys = [rel for rel, _ in entries]
    for q in queries + keys:
        i = bisect.bisect_right(keys, q)
        assert index.floor(q) == (entries[i - 1] if i else None)
    index.close()


def test_index_append_truncate_and_seal_keep_the_file_exact(tmp_path):
    path = str(tmp_path / "0.index")
    index = OffsetIndex(path, [], 8)
    assert index.rebuilt and os.path.getsize(path) == 8 * ENTRY.size
    for i in range(5):
        index.append(i * 10, 16 + i * 5000)
    index.truncate(3)
    assert index.count == 3 and index.floor(45) == (20, 10016)
    index.seal()
    assert index.full
    with open(path, "rb") as f:
        assert f.read() == encode_entries([(0, 16), (10, 5016), (20, 10016)])
    index.close()


def test_index_reopen_keeps_a_matching_file_and_rewrites_a_wrong_one(tmp_path):
    path = str(tmp_path / "0.index")
    entries = [(0, 16), (7, 4200)]
    OffsetIndex(path, entries, 4).close()
    again = OffsetIndex(path, entries, 4)
    assert not again.rebuilt
    again.close()
    with open(path, "r+b") as f:
        f.seek(ENTRY.size * 3)
        f.write(b"\x01")
    repaired = OffsetIndex(path, entries, 4)
    assert repaired.rebuilt and [repaired.entry(i) for i in range(2)] == entries
    repaired.close()
    with open(path, "rb") as f:
        assert f.read() == encode_entries(entries) + bytes(2 * ENTRY.size)
