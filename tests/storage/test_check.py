"""`storage.check_partition`: the read-only fsck of one partition directory.

A log of several sealed segments and an active one is written once per
test; the test damages a copy and expects each problem named with its file,
byte position and offset, and the files unchanged by the check."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from storage import LogConfig, PartitionLog, check_partition

CONFIG = LogConfig(segment_bytes_max=1024, frame_bytes_max=1024, index_interval_bytes=100, index_bytes_max=256)
HEADER_BYTES = 16
ENTRY = struct.Struct("<II")
FRAME_HEADER = struct.Struct("<II")


@pytest.fixture
def partition(tmp_path: Path) -> Path:
    directory = tmp_path / "0"
    log = PartitionLog.open(directory, CONFIG)
    try:
        for i in range(40):
            log.append([f'{{"n":{i},"pad":"{"x" * 40}"}}'.encode()] * (1 + i % 3))
    finally:
        log.close()
    return directory


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def frame_positions(path: Path) -> list[int]:
    data, positions, position = path.read_bytes(), [], HEADER_BYTES
    while position < len(data):
        positions.append(position)
        position += FRAME_HEADER.size + FRAME_HEADER.unpack_from(data, position)[0]
    return positions


def first_offset(path: Path, position: int) -> int:
    return struct.unpack_from(">Q", path.read_bytes(), position + FRAME_HEADER.size + 2)[0]


def logs(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.log"))


def test_check_clean_partition_counts_every_segment_and_record(partition):
    before = snapshot(partition)
    report = check_partition(str(partition))
    assert report.clean, report.problems
    assert len(report.segments) == len(logs(partition)) >= 3
    assert report.records == sum(1 + i % 3 for i in range(40))
    assert report.bytes == sum(p.stat().st_size for p in logs(partition))
    assert [s.base_offset for s in report.segments[1:]] == [s.end_offset for s in report.segments[:-1]]
    assert snapshot(partition) == before


def test_check_flipped_byte_is_a_crc_mismatch_at_its_frame_and_scan_resumes(partition):
    sealed = logs(partition)[0]
    position = frame_positions(sealed)[1]
    offset = first_offset(sealed, position)
    data = bytearray(sealed.read_bytes())
    data[position + 30] ^= 0x01
    sealed.write_bytes(bytes(data))
    before = snapshot(partition)
    report = check_partition(str(partition))
    kinds = [(p.kind, p.path, p.position, p.offset) for p in report.problems]
    assert ("CRC mismatch", str(sealed), position, offset) in kinds
    assert ("offset gap", str(sealed), frame_positions(sealed)[2], offset) in kinds
    assert report.records == sum(1 + i % 3 for i in range(40)) - (first_offset(sealed, frame_positions(sealed)[2])
                                                                   - offset)
    assert snapshot(partition) == before


def test_check_truncated_active_frame_is_a_torn_tail(partition):
    active = logs(partition)[-1]
    position = frame_positions(active)[-1]
    offset = first_offset(active, position)
    with open(active, "r+b") as f:
        f.truncate(active.stat().st_size - 5)
    before = snapshot(partition)
    report = check_partition(str(partition))
    problem, *others = report.problems
    assert (problem.kind, problem.path, problem.position, problem.offset) == ("torn tail", str(active), position,
                                                                             offset)
    assert all(p.kind == "bad index entry" and f"byte {position} is not the start" in p.detail for p in others)
    assert snapshot(partition) == before


def test_check_truncated_sealed_segment_is_damage_and_an_offset_gap(partition):
    sealed = logs(partition)[0]
    position = frame_positions(sealed)[-1]
    with open(sealed, "r+b") as f:
        f.truncate(sealed.stat().st_size - 5)
    report = check_partition(str(partition))
    kinds = {p.kind for p in report.problems}
    torn = [p for p in report.problems if p.path == str(sealed) and p.position == position]
    assert torn and "sealed segment" in torn[0].detail
    assert "offset gap" in kinds


def test_check_bad_frame_length_is_named(partition):
    sealed = logs(partition)[1]
    position = frame_positions(sealed)[0]
    data = bytearray(sealed.read_bytes())
    FRAME_HEADER.pack_into(data, position, 0xFFFFFFF0, 0)
    sealed.write_bytes(bytes(data))
    report = check_partition(str(partition))
    problem = report.problems[0]
    assert (problem.kind, problem.position, problem.offset) == ("bad frame length", position,
                                                                 int(sealed.name[:20]))


def test_check_index_entry_pointing_elsewhere_is_named_with_its_position(partition):
    index = sorted(partition.glob("*.index"))[0]
    data = bytearray(index.read_bytes())
    relative, position = ENTRY.unpack_from(data, 0)
    ENTRY.pack_into(data, 0, relative, position + 1)
    index.write_bytes(bytes(data))
    before = snapshot(partition)
    [problem] = check_partition(str(partition)).problems
    assert (problem.kind, problem.path, problem.position) == ("bad index entry", str(index), 0)
    assert f"byte {position + 1} is not the start of a valid frame" in problem.detail
    assert snapshot(partition) == before


def test_check_missing_index_and_unexpected_file_are_reported(partition):
    sorted(partition.glob("*.index"))[-1].unlink()
    (partition / "notes.txt").write_text("hello")
    kinds = sorted(p.kind for p in check_partition(str(partition)).problems)
    assert kinds == ["index missing", "unexpected file"]


def test_check_bad_header_is_named_at_byte_zero(partition):
    sealed = logs(partition)[0]
    data = bytearray(sealed.read_bytes())
    data[0:6] = b"BADLOG"
    sealed.write_bytes(bytes(data))
    [problem] = check_partition(str(partition)).problems
    assert (problem.kind, problem.position, problem.offset) == ("bad header", 0, 0)
