"""Torn writes and corruption on disk (RELIABILITY.md (2), invariants I5, I6).

Every test starts from one pristine partition directory built once per
module: several sealed segments and an active segment of several frames,
some holding several records. The oracle is a full read of that log taken
before any damage. A test copies the directory, damages its files, reopens
it and compares what recovery reports and what the log serves with the
oracle.

The file layout is parsed here independently of `storage.record`, so a
wrong layout in the storage code cannot hide behind its own parser.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import tempfile
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from storage import CorruptLogError, FileIO, LogConfig, PartitionLog, Record

CONFIG = LogConfig(segment_bytes_max=1024, frame_bytes_max=1024, index_interval_bytes=100, index_bytes_max=256)
SEED = 20240611
HEADER_BYTES = 16
FRAME_HEADER_BYTES = 8
ENTRY = struct.Struct("<II")
SEALED_SEGMENTS_MIN = 3
ACTIVE_BATCH_SIZES = (2, 1, 3, 1, 3)
ALLOCATION_BYTES_MAX = 16 * 1024 * 1024


class Frame(NamedTuple):
    position: int
    end: int
    first_offset: int
    count: int

    @property
    def end_offset(self) -> int:
        return self.first_offset + self.count


@dataclass(frozen=True)
class Pristine:
    directory: Path
    oracle: list[Record]
    bases: list[int]
    frames: dict[int, list[Frame]]
    files: dict[str, bytes]

    @property
    def active(self) -> int:
        return self.bases[-1]

    @property
    def sealed(self) -> list[int]:
        return self.bases[:-1]


class StepClock:
    def __init__(self, ms: int = 1_700_000_000_000) -> None:
        self.ms = ms

    def __call__(self) -> int:
        self.ms += 1
        return self.ms


class BoundedReadIO(FileIO):
    """Fails any pread that asks for bytes past the end of its file."""

    def pread(self, fd: int, size: int, position: int) -> bytes:
        assert position + size <= os.fstat(fd).st_size, f"pread of {size} bytes at {position} reads past EOF"
        return super().pread(fd, size, position)


# -- layout and file helpers -----------------------------------------------------


def log_name(base: int) -> str:
    return f"{base:020d}.log"


def index_name(base: int) -> str:
    return f"{base:020d}.index"


def parse_layout(data: bytes) -> list[Frame]:
    """The frames of an undamaged segment file, read by the documented layout."""
    frames, position = [], HEADER_BYTES
    while position < len(data):
        (length,) = struct.unpack_from("<I", data, position)
        body = position + FRAME_HEADER_BYTES
        assert data[body] == 0x93 and data[body + 1] == 0xCF and data[body + 19] == 0xDD
        (first_offset,) = struct.unpack_from(">Q", data, body + 2)
        (count,) = struct.unpack_from(">I", data, body + 20)
        frames.append(Frame(position, body + length, first_offset, count))
        position = body + length
    assert position == len(data)
    return frames


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def clone(pristine: Pristine, where: Path) -> Path:
    target = where / "p"
    shutil.copytree(pristine.directory, target)
    return target


def flip_bit(path: Path, position: int, bit: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 1 << bit
    path.write_bytes(bytes(data))


def put_u32le(path: Path, position: int, value: int) -> None:
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, position, value)
    path.write_bytes(bytes(data))


def truncate(path: Path, size: int) -> None:
    os.truncate(path, size)


def append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


# -- log helpers -----------------------------------------------------------------


def reopen(directory: Path, recover: str = "refuse", io: FileIO | None = None) -> PartitionLog:
    return PartitionLog.open(directory, CONFIG, clock=StepClock(1_800_000_000_000), recover=recover, io=io)


def read_all(log: PartitionLog) -> list[Record]:
    out: list[Record] = []
    offset = log.start_offset
    while offset < log.end_offset:
        chunk = log.read(offset, max_records=10_000, max_bytes=1 << 30)
        assert chunk, f"read at {offset} returned nothing below end offset {log.end_offset}"
        out += chunk
        offset = chunk[-1].offset + 1
    return out


def assert_serves(log: PartitionLog, expected: list[Record], *, each_offset: bool = False) -> None:
    """The log serves exactly `expected`: dense from 0, byte-identical."""
    assert log.start_offset == 0
    assert log.end_offset == len(expected)
    assert read_all(log) == expected
    if each_offset:
        for record in expected:
            assert log.read(record.offset, max_records=1) == [record]


def assert_appends_at(log: PartitionLog, offset: int) -> None:
    appended = log.append([b"after-recovery-1", b"after-recovery-2"])
    assert (appended.first_offset, appended.end_offset) == (offset, offset + 2)
    assert [r.payload for r in log.read(offset)] == [b"after-recovery-1", b"after-recovery-2"]


def assert_clean_reopen(directory: Path, expected: list[Record]) -> None:
    """A second open after recovery finds nothing more to do."""
    log = reopen(directory)
    try:
        assert log.recovery.events == []
        assert read_all(log)[: len(expected)] == expected
    finally:
        log.close()


def events(log: PartitionLog, action: str) -> list:
    return log.recovery.actions(action)


def index_entry_count(data: bytes) -> int:
    """Entries in an index file: a sealed one holds only entries, an active one zeros after them."""
    count = 0
    while count * ENTRY.size < len(data):
        rel, position = ENTRY.unpack_from(data, count * ENTRY.size)
        if count and (rel, position) == (0, 0):
            break
        count += 1
    return count


# -- the pristine log ------------------------------------------------------------


def build(directory: Path) -> None:
    rng = random.Random(SEED)
    log = PartitionLog.open(directory, CONFIG, clock=StepClock())

    def batch(n: int) -> list[bytes]:
        first = log.end_offset
        return [b"" if rng.random() < 0.08 else f"r{first + i}:".encode() + rng.randbytes(rng.randint(0, 24))
                for i in range(n)]

    sizes = (1, 2, 3, 1, 3, 2)
    i = frames_in_active = 0
    while log.statistics().segment_count <= SEALED_SEGMENTS_MIN or frames_in_active < 6:
        segments = log.statistics().segment_count
        log.append(batch(sizes[i % len(sizes)]))
        frames_in_active = 1 if log.statistics().segment_count != segments else frames_in_active + 1
        i += 1
    log.roll()
    for n in ACTIVE_BATCH_SIZES:
        log.append(batch(n))
    log.close()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    directory = tmp_path_factory.mktemp("pristine") / "p"
    build(directory)
    before = snapshot(directory)
    log = reopen(directory)
    assert log.recovery.events == [], "an undamaged log must reopen without recovery work"
    oracle = read_all(log)
    log.close()
    files = snapshot(directory)
    assert files == before, "an undamaged reopen must not change any file"
    bases = sorted(int(name[:20]) for name in files if name.endswith(".log"))
    frames = {base: parse_layout(files[log_name(base)]) for base in bases}
    assert [r.offset for r in oracle] == list(range(len(oracle)))
    assert sum(f.count for fs in frames.values() for f in fs) == len(oracle)
    assert [f.count for f in frames[bases[-1]]] == list(ACTIVE_BATCH_SIZES)
    for base in bases[:-1]:
        assert len(frames[base]) >= 4
        assert 2 <= index_entry_count(files[index_name(base)]) < len(frames[base]), "index must be sparse"
    assert index_entry_count(files[index_name(bases[-1])]) >= 2
    return Pristine(directory, oracle, bases, frames, files)


def test_damage_pristine_log_has_the_intended_shape(pristine: Pristine) -> None:
    assert len(pristine.sealed) >= SEALED_SEGMENTS_MIN
    assert any(f.count > 1 for f in pristine.frames[pristine.active])
    assert pristine.frames[pristine.active][-1].count > 1


# -- torn tail of the active segment ----------------------------------------------


def test_damage_truncate_active_at_every_byte_of_last_frame(pristine: Pristine, tmp_path: Path) -> None:
    last = pristine.frames[pristine.active][-1]
    kept = pristine.oracle[: last.first_offset]
    for cut in range(last.position, last.end):
        where = tmp_path / str(cut)
        where.mkdir()
        directory = clone(pristine, where)
        truncate(directory / log_name(pristine.active), cut)
        log = reopen(directory)
        try:
            assert_serves(log, kept)
            assert events(log, "truncated_damage") == []
            assert log.recovery.truncated_bytes == cut - last.position, f"cut at {cut}"
            tails = events(log, "truncated_tail")
            if cut == last.position:
                assert tails == []
            else:
                (tail,) = tails
                assert tail.path == str(directory / log_name(pristine.active))
                assert (tail.position, tail.offset, tail.bytes_removed) == (last.position, last.first_offset, cut - last.position)
            assert os.path.getsize(directory / log_name(pristine.active)) == last.position
            assert_appends_at(log, last.first_offset)
        finally:
            log.close()
    assert_clean_reopen(directory, kept)


@pytest.mark.parametrize("kind", ["zeros", "garbage"])
def test_damage_bytes_appended_to_active_are_cut(pristine: Pristine, tmp_path: Path, kind: str) -> None:
    directory = clone(pristine, tmp_path)
    path = directory / log_name(pristine.active)
    size = path.stat().st_size
    junk = bytes(4096) if kind == "zeros" else random.Random(SEED).randbytes(4096)
    append_bytes(path, junk)
    log = reopen(directory)
    try:
        assert_serves(log, pristine.oracle)
        (tail,) = events(log, "truncated_tail")
        assert (tail.position, tail.offset, tail.bytes_removed) == (size, len(pristine.oracle), len(junk))
        assert log.recovery.truncated_bytes == len(junk)
        assert path.stat().st_size == size
        assert_appends_at(log, len(pristine.oracle))
    finally:
        log.close()
    assert_clean_reopen(directory, pristine.oracle)


# Where to flip a bit in a frame: (byte from the frame start, bit); negative bytes count from the end.
FRAME_BITS = {
    "length_low": (0, 0),
    "length_high": (3, 7),
    "crc": (5, 3),
    "first_offset": (FRAME_HEADER_BYTES + 9, 0),
    "record_count": (FRAME_HEADER_BYTES + 23, 1),
    "payload": (-1, 4),
}


def frame_byte(frame: Frame, where: str) -> tuple[int, int]:
    byte, bit = FRAME_BITS[where]
    return (frame.end + byte if byte < 0 else frame.position + byte), bit


@pytest.mark.parametrize("where", sorted(FRAME_BITS))
def test_damage_bit_flip_in_last_frame_is_a_torn_tail(pristine: Pristine, tmp_path: Path, where: str) -> None:
    directory = clone(pristine, tmp_path)
    last = pristine.frames[pristine.active][-1]
    flip_bit(directory / log_name(pristine.active), *frame_byte(last, where))
    log = reopen(directory)
    try:
        assert_serves(log, pristine.oracle[: last.first_offset])
        assert events(log, "truncated_damage") == []
        (tail,) = events(log, "truncated_tail")
        assert (tail.position, tail.offset, tail.bytes_removed) == (last.position, last.first_offset, last.end - last.position)
        assert log.recovery.truncated_bytes == last.end - last.position
        assert_appends_at(log, last.first_offset)
    finally:
        log.close()


# -- damage followed by valid frames (I5) ------------------------------------------


def damaged_frame(pristine: Pristine, location: str) -> tuple[int, Frame]:
    """A frame that valid frames follow: (its segment's base, the frame)."""
    if location == "active":
        return pristine.active, pristine.frames[pristine.active][1]
    if location == "first_sealed_last_frame":
        base = pristine.sealed[0]
        return base, pristine.frames[base][-1]
    if location == "middle_sealed":
        base = pristine.sealed[1]
        return base, pristine.frames[base][2]
    assert location == "last_sealed"
    base = pristine.sealed[-1]
    return base, pristine.frames[base][1]


LOCATIONS = ["active", "first_sealed_last_frame", "middle_sealed", "last_sealed"]
MIDDLE_BITS = ["length_low", "crc", "payload"]


@pytest.mark.parametrize("where", MIDDLE_BITS)
@pytest.mark.parametrize("location", LOCATIONS)
def test_damage_bit_flip_before_valid_frames_refuses(pristine: Pristine, tmp_path: Path, location: str, where: str) -> None:
    directory = clone(pristine, tmp_path)
    base, frame = damaged_frame(pristine, location)
    flip_bit(directory / log_name(base), *frame_byte(frame, where))
    damaged = snapshot(directory)
    with pytest.raises(CorruptLogError) as caught:
        reopen(directory)
    error = caught.value
    assert (error.path, error.position, error.offset) == (str(directory / log_name(base)), frame.position, frame.first_offset)
    assert "recover='truncate'" in str(error)
    assert snapshot(directory) == damaged, "a refused open must not change any file"


@pytest.mark.parametrize("where", MIDDLE_BITS)
@pytest.mark.parametrize("location", LOCATIONS)
def test_damage_bit_flip_before_valid_frames_truncates_on_request(pristine: Pristine, tmp_path: Path,
                                                                  location: str, where: str) -> None:
    directory = clone(pristine, tmp_path)
    base, frame = damaged_frame(pristine, location)
    path = directory / log_name(base)
    flip_bit(path, *frame_byte(frame, where))
    later = [b for b in pristine.bases if b > base]
    lost_bytes = len(pristine.files[log_name(base)]) - frame.position + sum(len(pristine.files[log_name(b)]) for b in later)
    kept = pristine.oracle[: frame.first_offset]
    log = reopen(directory, recover="truncate")
    try:
        assert_serves(log, kept, each_offset=True)
        assert events(log, "truncated_tail") == []
        (cut,) = events(log, "truncated_damage")
        assert (cut.path, cut.position, cut.offset) == (str(path), frame.position, frame.first_offset)
        assert cut.bytes_removed == lost_bytes
        lost_records = len(pristine.oracle) - len(kept)
        assert cut.records_removed == lost_records, "records_removed must count every record lost, the damaged frame's too"
        assert path.stat().st_size == frame.position
        names = set(os.listdir(directory))
        for b in later:
            assert log_name(b) not in names and index_name(b) not in names
        for b in pristine.bases:
            if b < base:
                assert (directory / log_name(b)).read_bytes() == pristine.files[log_name(b)]
        assert_appends_at(log, frame.first_offset)
    finally:
        log.close()
    assert_clean_reopen(directory, kept)


# -- hostile length field ---------------------------------------------------------


def open_traced(directory: Path, recover: str = "refuse") -> tuple[PartitionLog | CorruptLogError, int]:
    """Open the log under tracemalloc; the result (or the refusal) and the peak bytes allocated."""
    tracemalloc.start()
    try:
        try:
            result: PartitionLog | CorruptLogError = reopen(directory, recover=recover, io=BoundedReadIO())
        except CorruptLogError as e:
            result = e
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_damage_huge_length_in_last_frame_is_a_torn_tail(pristine: Pristine, tmp_path: Path) -> None:
    directory = clone(pristine, tmp_path)
    last = pristine.frames[pristine.active][-1]
    put_u32le(directory / log_name(pristine.active), last.position, 2**31)
    log, peak = open_traced(directory)
    assert peak < ALLOCATION_BYTES_MAX
    assert isinstance(log, PartitionLog)
    try:
        assert_serves(log, pristine.oracle[: last.first_offset], each_offset=True)
        (tail,) = events(log, "truncated_tail")
        assert (tail.position, tail.offset, tail.bytes_removed) == (last.position, last.first_offset, last.end - last.position)
        assert "length" in tail.detail
        assert_appends_at(log, last.first_offset)
    finally:
        log.close()


@pytest.mark.parametrize("location", LOCATIONS)
def test_damage_huge_length_before_valid_frames_refuses(pristine: Pristine, tmp_path: Path, location: str) -> None:
    directory = clone(pristine, tmp_path)
    base, frame = damaged_frame(pristine, location)
    put_u32le(directory / log_name(base), frame.position, 2**31)
    error, peak = open_traced(directory)
    assert peak < ALLOCATION_BYTES_MAX
    assert isinstance(error, CorruptLogError)
    assert (error.path, error.position, error.offset) == (str(directory / log_name(base)), frame.position, frame.first_offset)
    assert "length" in error.reason


def test_damage_huge_length_before_valid_frames_truncates_without_allocating(pristine: Pristine, tmp_path: Path) -> None:
    directory = clone(pristine, tmp_path)
    base, frame = damaged_frame(pristine, "active")
    put_u32le(directory / log_name(base), frame.position, 2**31)
    log, peak = open_traced(directory, recover="truncate")
    assert peak < ALLOCATION_BYTES_MAX
    assert isinstance(log, PartitionLog)
    try:
        assert_serves(log, pristine.oracle[: frame.first_offset], each_offset=True)
    finally:
        log.close()


# -- indexes are derived data (I6) --------------------------------------------------


def damage_index(path: Path, kind: str, log_size: int) -> None:
    data = path.read_bytes()
    count = index_entry_count(data)
    entries = [ENTRY.unpack_from(data, i * ENTRY.size) for i in range(count)]
    if kind == "deleted":
        path.unlink()
        return
    if kind == "halved":
        path.write_bytes(data[: len(data) // 2])
        return
    if kind == "random":
        path.write_bytes(random.Random(SEED).randbytes(len(data)))
        return
    if kind == "past_end":
        rel, _ = entries[-1]
        entries[-1] = (rel, log_size + 64)
    elif kind == "stale_after_last":
        rel, _ = entries[-1]
        entries.append((rel + 1, log_size + 8))
    else:
        assert kind == "non_monotonic"
        entries[0], entries[1] = entries[1], entries[0]
    body = b"".join(ENTRY.pack(*e) for e in entries)
    path.write_bytes(body + bytes(max(len(data) - len(body), 0)))


INDEX_DAMAGE = ["deleted", "halved", "random", "past_end", "stale_after_last", "non_monotonic"]


@pytest.mark.parametrize("kind", INDEX_DAMAGE)
@pytest.mark.parametrize("segment", ["sealed", "active"])
def test_damage_index_is_rebuilt_and_reads_are_identical(pristine: Pristine, tmp_path: Path, segment: str, kind: str) -> None:
    directory = clone(pristine, tmp_path)
    base = pristine.sealed[1] if segment == "sealed" else pristine.active
    path = directory / index_name(base)
    damage_index(path, kind, len(pristine.files[log_name(base)]))
    assert path.exists() == (kind != "deleted")
    log = reopen(directory)
    try:
        (rebuilt,) = log.recovery.events
        assert (rebuilt.action, rebuilt.path) == ("rebuilt_index", str(path))
        assert log.recovery.truncated_bytes == 0
        assert_serves(log, pristine.oracle, each_offset=True)
        assert log.read(0, max_records=1, max_bytes=1) == pristine.oracle[:1]
    finally:
        log.close()
    assert snapshot(directory) == pristine.files, "the rebuilt index must equal the index of an undamaged reopen"
    assert_clean_reopen(directory, pristine.oracle)


# -- segment headers and the set of segments ----------------------------------------


def empty_active(pristine: Pristine, tmp_path: Path) -> tuple[Path, Path]:
    """A copy whose active segment is freshly rolled and empty; its path."""
    directory = clone(pristine, tmp_path)
    log = reopen(directory)
    log.roll()
    log.close()
    path = directory / log_name(len(pristine.oracle))
    assert path.read_bytes()[:6] == b"NKDLOG" and path.stat().st_size == HEADER_BYTES
    return directory, path


def test_damage_zero_length_active_segment(pristine: Pristine, tmp_path: Path) -> None:
    directory, path = empty_active(pristine, tmp_path)
    header = path.read_bytes()
    truncate(path, 0)
    log = reopen(directory)
    try:
        (event,) = events(log, "rewrote_header")
        assert (event.path, event.offset, event.bytes_removed) == (str(path), len(pristine.oracle), 0)
        assert path.read_bytes() == header
        assert_serves(log, pristine.oracle)
        assert_appends_at(log, len(pristine.oracle))
    finally:
        log.close()
    assert_clean_reopen(directory, pristine.oracle)


def test_damage_header_torn_at_creation(pristine: Pristine, tmp_path: Path) -> None:
    for size in range(1, HEADER_BYTES):
        where = tmp_path / str(size)
        where.mkdir()
        directory, path = empty_active(pristine, where)
        header = path.read_bytes()
        truncate(path, size)
        log = reopen(directory)
        try:
            (event,) = log.recovery.events
            assert (event.action, event.path, event.bytes_removed) == ("rewrote_header", str(path), size)
            assert path.read_bytes() == header
            assert_serves(log, pristine.oracle)
            assert_appends_at(log, len(pristine.oracle))
        finally:
            log.close()


@pytest.mark.parametrize("which", ["middle", "last_sealed"])
def test_damage_missing_segment_refuses_naming_the_gap(pristine: Pristine, tmp_path: Path, which: str) -> None:
    directory = clone(pristine, tmp_path)
    i = 1 if which == "middle" else len(pristine.sealed) - 1
    missing, before, after = pristine.bases[i], pristine.bases[i - 1], pristine.bases[i + 1]
    (directory / log_name(missing)).unlink()
    with pytest.raises(CorruptLogError) as caught:
        reopen(directory)
    error = caught.value
    assert error.path == str(directory / log_name(before))
    assert (error.position, error.offset) == (len(pristine.files[log_name(before)]), missing)
    assert f"ends at offset {missing}" in error.reason and f"starts at {after}" in error.reason
    for base in pristine.bases:
        if base != missing:
            assert (directory / log_name(base)).read_bytes() == pristine.files[log_name(base)]


@pytest.mark.parametrize("which", ["middle", "last_sealed"])
def test_damage_missing_segment_truncates_on_request(pristine: Pristine, tmp_path: Path, which: str) -> None:
    directory = clone(pristine, tmp_path)
    i = 1 if which == "middle" else len(pristine.sealed) - 1
    missing = pristine.bases[i]
    (directory / log_name(missing)).unlink()
    log = reopen(directory, recover="truncate")
    try:
        assert_serves(log, pristine.oracle[:missing], each_offset=True)
        (cut,) = events(log, "truncated_damage")
        assert cut.path == str(directory / log_name(pristine.bases[i - 1]))
        assert cut.offset == missing
        on_disk_past_gap = len(pristine.oracle) - pristine.bases[i + 1]
        assert cut.records_removed == on_disk_past_gap, "the records that still existed past the gap"
        assert sorted(os.listdir(directory)) == sorted(n for b in pristine.bases[:i] for n in (log_name(b), index_name(b)))
        assert_appends_at(log, missing)
    finally:
        log.close()


HEADER_DAMAGE = {
    "wrong_magic": (0, b"NKDLOX"),
    "wrong_version": (6, struct.pack(">H", 2)),
    "wrong_base": (8, struct.pack(">Q", 12345)),
}


@pytest.mark.parametrize("kind", sorted(HEADER_DAMAGE))
@pytest.mark.parametrize("segment", ["sealed", "active"])
def test_damage_bad_segment_header_refuses(pristine: Pristine, tmp_path: Path, segment: str, kind: str) -> None:
    directory = clone(pristine, tmp_path)
    base = pristine.sealed[1] if segment == "sealed" else pristine.active
    path = directory / log_name(base)
    position, replacement = HEADER_DAMAGE[kind]
    data = bytearray(path.read_bytes())
    data[position : position + len(replacement)] = replacement
    path.write_bytes(bytes(data))
    damaged = snapshot(directory)
    with pytest.raises(CorruptLogError) as caught:
        reopen(directory)
    error = caught.value
    assert (error.path, error.position, error.offset) == (str(path), 0, base)
    assert {"wrong_magic": "magic", "wrong_version": "version", "wrong_base": "base offset"}[kind] in error.reason
    assert snapshot(directory) == damaged


# -- the directory ----------------------------------------------------------------


def test_damage_stray_temporary_files_are_removed_and_reported(pristine: Pristine, tmp_path: Path) -> None:
    directory = clone(pristine, tmp_path)
    strays = ["x.tmp", f"{log_name(pristine.active)}.swap", f"{index_name(pristine.sealed[0])}.cleaned",
              index_name(len(pristine.oracle) + 1000)]
    for name in strays:
        (directory / name).write_bytes(b"half-written")
    log = reopen(directory)
    try:
        removed = events(log, "removed_stray_file")
        assert sorted(e.path for e in removed) == sorted(str(directory / n) for n in strays)
        assert log.recovery.events == removed
        assert_serves(log, pristine.oracle)
    finally:
        log.close()
    assert snapshot(directory) == pristine.files


def test_damage_unknown_file_refuses(pristine: Pristine, tmp_path: Path) -> None:
    directory = clone(pristine, tmp_path)
    (directory / "notes.txt").write_bytes(b"not mine")
    damaged = snapshot(directory)
    with pytest.raises(CorruptLogError) as caught:
        reopen(directory)
    assert caught.value.path == str(directory / "notes.txt")
    assert snapshot(directory) == damaged


# -- random damage ------------------------------------------------------------------


def common_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def tail_outcome(original: bytes, damaged: bytes, frames: list[Frame]) -> tuple[int, int] | None:
    """If the active segment's damage is confined to its tail: (records kept, bytes cut); else None.

    Tail damage leaves the header whole (or torn short: a prefix of it, or
    zeros, as creation can leave) and no original frame intact after the
    first changed byte.
    """
    p = common_prefix(original, damaged)
    if len(damaged) < HEADER_BYTES:
        torn_header = p == len(damaged) or not any(damaged)
        return (0, len(damaged)) if torn_header else None
    if p < HEADER_BYTES:
        return None
    if any(f.position >= p and damaged[f.position : f.end] == original[f.position : f.end] for f in frames):
        return None
    intact = [f for f in frames if f.end <= p]
    kept_size = intact[-1].end if intact else HEADER_BYTES
    return sum(f.count for f in intact), len(damaged) - kept_size


@st.composite
def damage_plans(draw: st.DrawFn, names: list[str], active: str) -> list[tuple[str, str, int, int, bytes]]:
    steps = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.one_of(st.just(active), st.sampled_from(names)))
        kind = draw(st.sampled_from(["truncate", "flip", "append"]))
        where = draw(st.integers(0, 2**32))
        mask = draw(st.integers(1, 255))
        junk = draw(st.one_of(st.binary(min_size=1, max_size=600), st.integers(1, 4096).map(bytes)))
        steps.append((name, kind, where, mask, junk))
    return steps


def apply_damage(directory: Path, plan: list[tuple[str, str, int, int, bytes]]) -> None:
    for name, kind, where, mask, junk in plan:
        path = directory / name
        data = bytearray(path.read_bytes())
        if kind == "truncate":
            del data[where % (len(data) + 1):]
        elif kind == "flip" and data:
            data[where % len(data)] ^= mask
        else:
            data += junk
        path.write_bytes(bytes(data))


@settings(max_examples=50, derandomize=True)
@given(data=st.data())
def test_damage_random_never_serves_altered_data(pristine: Pristine, data: st.DataObject) -> None:
    names = sorted(pristine.files)
    active = log_name(pristine.active)
    plan = data.draw(damage_plans(names, active), label="plan")
    sealed_records = pristine.active
    with tempfile.TemporaryDirectory() as where:
        directory = clone(pristine, Path(where))
        apply_damage(directory, plan)
        damaged = snapshot(directory)
        changed_logs = {str(directory / n) for n in names if n.endswith(".log") and damaged[n] != pristine.files[n]}
        sealed_changed = any(damaged[log_name(b)] != pristine.files[log_name(b)] for b in pristine.sealed)
        tail = None if sealed_changed else tail_outcome(pristine.files[active], damaged[active], pristine.frames[pristine.active])
        try:
            log = reopen(directory)
        except CorruptLogError as error:
            event("refused")
            assert tail is None, f"tail damage refused: {error}"
            assert error.path in changed_logs, f"refusal names an undamaged file: {error}"
            assert snapshot(directory) == damaged, "a refused open must not change any file"
            return
        event("opened, tail cut" if tail and tail[1] else "opened, nothing cut")
        try:
            assert tail is not None, "damage before valid data was opened without a refusal"
            kept_records, cut_bytes = tail
            expected = pristine.oracle[: sealed_records + kept_records]
            assert_serves(log, expected)
            assert log.recovery.truncated_bytes == cut_bytes
            assert events(log, "truncated_damage") == []
            assert_appends_at(log, len(expected))
        finally:
            log.close()
