"""The offline check of one partition directory (`nakadi fsck`), read-only.

Where the loader repairs what it can and refuses the rest at the first
damage, this module only looks, and keeps looking: every segment and index
is read through read-only descriptors and maps, every frame is parsed with
`record.parse_frame` and its payload list decoded, and after damage the
scan resumes at the next valid frame (found by the frame's fixed body
prefix, as recovery does), so one run reports every problem with its file,
byte position and offset. Nothing is ever written, truncated or removed.

What is checked, per segment in base-offset order:
- the name (20-digit base offset) and the 16-byte header;
- every frame: length within bounds, CRC32C, fixed body prefix, payloads;
- offsets: dense inside a segment and across segments (each segment starts
  where the previous one ended);
- the tail: bytes after the last valid frame that no valid frame follows
  are a torn tail (recovery would cut them from the active segment; in a
  sealed segment they are damage all the same);
- the index: 8-byte entries (relative offset, position), strictly
  increasing, each at the start of a valid frame holding that offset, then
  only zeros (the active segment's preallocated room).
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from .index import ENTRY
from .record import (
    FRAME_HEADER,
    SEGMENT_HEADER,
    BadFrame,
    FrameInfo,
    check_segment_header,
    frame_payloads,
    parse_frame,
)

FRAME_BYTES_MAX_DEFAULT: Final = 64 * 1024 * 1024
_SEGMENT_FILE: Final = re.compile(r"^(\d{20})\.(log|index)$")
_PREFIX_MARK: Final = b"\x93\xcf"


@dataclass(frozen=True)
class Problem:
    """One thing wrong: which file, where, at which offset, what."""

    path: str
    kind: str
    detail: str
    position: int | None = None
    offset: int | None = None


@dataclass(frozen=True)
class SegmentCheck:
    """What one segment's `.log` held: its offsets and valid records."""

    path: str
    base_offset: int
    end_offset: int
    records: int
    bytes: int


@dataclass
class PartitionCheck:
    """The report of `check_partition`: segments, totals and every problem."""

    directory: str
    segments: list[SegmentCheck] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.segments)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.segments)

    @property
    def clean(self) -> bool:
        return not self.problems


def check_partition(directory: str, *, frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT,
                    on_bytes: Callable[[int], None] | None = None) -> PartitionCheck:
    """Check every segment and index of `directory` without changing it.

    `on_bytes` is told how many bytes of `.log` were read after each segment,
    for a progress bar."""
    report = PartitionCheck(directory)
    bases, indexes = _inventory(directory, report)
    expected: int | None = None
    for i, base in enumerate(bases):
        path = os.path.join(directory, f"{base:020d}.log")
        if expected is not None and base != expected:
            report.problems.append(Problem(path, "offset gap", f"segment starts at offset {base} but the previous "
                                           f"segment ends at offset {expected}", position=0, offset=base))
        segment, frames = _check_segment(path, base, frame_bytes_max, sealed=i < len(bases) - 1, report=report)
        report.segments.append(segment)
        expected = segment.end_offset
        if base in indexes:
            _check_index(os.path.join(directory, f"{base:020d}.index"), base, frames, report)
        else:
            report.problems.append(Problem(os.path.join(directory, f"{base:020d}.index"), "index missing",
                                           "the segment has no index file"))
        if on_bytes is not None:
            on_bytes(segment.bytes)
    return report


def _inventory(directory: str, report: PartitionCheck) -> tuple[list[int], set[int]]:
    logs: set[int] = set()
    indexes: set[int] = set()
    for name in sorted(os.listdir(directory)):
        match = _SEGMENT_FILE.match(name)
        if match is None:
            report.problems.append(Problem(os.path.join(directory, name), "unexpected file",
                                           "not a segment or index of a partition"))
        else:
            (logs if match.group(2) == "log" else indexes).add(int(match.group(1)))
    for base in sorted(indexes - logs):
        report.problems.append(Problem(os.path.join(directory, f"{base:020d}.index"), "stray index",
                                       "index without a segment"))
    return sorted(logs), indexes


def _check_segment(path: str, base: int, frame_bytes_max: int, *, sealed: bool,
                   report: PartitionCheck) -> tuple[SegmentCheck, dict[int, FrameInfo]]:
    """Scan one `.log`; the valid frames by position, for the index check."""
    frames: dict[int, FrameInfo] = {}
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < SEGMENT_HEADER.size:
            report.problems.append(Problem(path, "bad header", f"segment header is {size} bytes, expected "
                                           f"{SEGMENT_HEADER.size}", position=0, offset=base))
            return SegmentCheck(path, base, base, 0, size), frames
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mm:
            reason = check_segment_header(mm[: SEGMENT_HEADER.size], base)
            if reason is not None:
                report.problems.append(Problem(path, "bad header", reason, position=0, offset=base))
            end_offset = _scan_frames(path, mm, size, base, frame_bytes_max, sealed, frames, report)
    return SegmentCheck(path, base, end_offset, sum(f.count for f in frames.values()), size), frames


def _scan_frames(path: str, mm: mmap.mmap, size: int, base: int, frame_bytes_max: int, sealed: bool,
                 frames: dict[int, FrameInfo], report: PartitionCheck) -> int:
    """Walk the frames from the header on, resuming after damage; the end offset."""
    position, expected = SEGMENT_HEADER.size, base
    while position < size:
        frame = parse_frame(mm, position, size, frame_bytes_max)
        if type(frame) is not FrameInfo:
            following = _next_valid_frame(mm, position + 1, size, frame_bytes_max)
            report.problems.append(_frame_problem(path, position, expected, frame, size, following, sealed))
            if following is not None:
                position = following.position
                continue
            # Nothing valid follows; when the frame's own length is sound,
            # step over it so a torn tail behind it is reported too.
            if not isinstance(frame, BadFrame) or _kind(frame.reason) == "bad frame length":
                break
            position += FRAME_HEADER.size + FRAME_HEADER.unpack_from(mm, position)[0]
            continue
        try:
            frame_payloads(mm, frame)
        except ValueError as error:
            report.problems.append(Problem(path, "bad payload", f"frame of {frame.count} records does not decode: "
                                           f"{error}", position=position, offset=frame.first_offset))
        if frame.first_offset != expected:
            report.problems.append(Problem(path, "offset gap", f"frame starts at offset {frame.first_offset}, "
                                           f"expected {expected}", position=position, offset=expected))
        frames[position] = frame
        expected = frame.end_offset
        position = frame.end_position
    return expected


def _frame_problem(path: str, position: int, offset: int, bad: object, size: int,
                   following: FrameInfo | None, sealed: bool) -> Problem:
    if isinstance(bad, BadFrame):
        kind, detail = _kind(bad.reason), bad.reason
    else:
        kind, detail = "torn tail", f"the file ends inside a frame, {size - position} bytes after the last valid one"
    if following is not None:
        detail += (f"; the next valid frame is at byte {following.position} (offset {following.first_offset}), "
                   f"{following.position - position} bytes skipped")
    elif kind != "torn tail":
        detail += "; no valid frame follows"
    if sealed:
        detail += " (in a sealed segment)"
    elif following is None:
        detail += " (opening the log would cut this torn tail)"
    return Problem(path, kind, detail, position=position, offset=offset)


def _kind(reason: str) -> str:
    if reason.startswith("CRC32C"):
        return "CRC mismatch"
    if reason.startswith("frame length"):
        return "bad frame length"
    return "bad frame"


def _next_valid_frame(mm: mmap.mmap, start: int, size: int, frame_bytes_max: int) -> FrameInfo | None:
    """The first valid frame at or after byte `start`, found by its fixed body prefix."""
    candidate = mm.find(_PREFIX_MARK, start + FRAME_HEADER.size)
    while candidate != -1:
        frame = parse_frame(mm, candidate - FRAME_HEADER.size, size, frame_bytes_max)
        if type(frame) is FrameInfo:
            return frame
        candidate = mm.find(_PREFIX_MARK, candidate + 1)
    return None


def _check_index(path: str, base: int, frames: dict[int, FrameInfo], report: PartitionCheck) -> None:
    with open(path, "rb") as f:
        data = f.read()
    if len(data) % ENTRY.size:
        report.problems.append(Problem(path, "bad index size", f"{len(data)} bytes is not a multiple of "
                                       f"{ENTRY.size}", position=len(data) - len(data) % ENTRY.size))
    count = len(data) // ENTRY.size
    previous: tuple[int, int] | None = None
    for i in range(count):
        at = i * ENTRY.size
        relative, position = ENTRY.unpack_from(data, at)
        if (relative, position) == (0, 0):
            if any(data[at:]):
                report.problems.append(Problem(path, "bad index entry", "non-zero bytes after the end of the "
                                               "entries (an all-zero entry)", position=at))
            return
        problem = _entry_problem(base, relative, position, previous, frames)
        if problem is not None:
            report.problems.append(Problem(path, "bad index entry", f"entry {i} ({relative}, {position}): {problem}",
                                           position=at, offset=base + relative))
        previous = (relative, position)


def _entry_problem(base: int, relative: int, position: int, previous: tuple[int, int] | None,
                   frames: dict[int, FrameInfo]) -> str | None:
    if previous is not None and (relative <= previous[0] or position <= previous[1]):
        return f"does not increase after ({previous[0]}, {previous[1]})"
    frame = frames.get(position)
    if frame is None:
        return f"byte {position} is not the start of a valid frame"
    if frame.first_offset != base + relative:
        return f"the frame at byte {position} starts at offset {frame.first_offset}, not {base + relative}"
    return None
