"""Opening a partition directory: the recovery passes, run at start-up only.

Theory of operation
-------------------
Pass 1, inventory: list the directory; segment files must be named by a
  20-digit base offset. Stray temporary files and indexes without a log
  are removed; anything else unknown stops opening.
Pass 2, sealed segments: every segment but the last was fsynced whole
  before the next one was created, so each must hold only valid frames
  with dense offsets, and end exactly where the next one begins. Any
  damage (bad header, CRC, length, offset, or a base-offset gap) stops
  opening with the file, byte position and offset, unless the caller asks
  for truncation: then the log is cut at the damage and every later
  segment deleted, with the lost record count reported.
Pass 3, active segment: a crash may have left a torn tail, a prefix of a
  frame that was being written and never acknowledged. The scan stops at
  the first invalid frame; if no valid frame follows anywhere after it,
  the tail is cut off and reported. If a valid frame does follow, this is
  damage, not a torn write, and is treated as in pass 2. A header torn
  while the segment was being created (a prefix of the expected header,
  or nothing) is written anew.
Pass 4, durability: what the scans accepted is about to be served, so
  the active segment is fdatasynced (a crash can leave written but never
  synced frames that look valid; serving them before they are durable
  could hand their offsets to other records after a power loss), and the
  directory is fsynced when a pass changed it.
Pass 5, indexes: the scan knows where every index entry must be; each
  `.index` is compared with that and rewritten when it differs (missing,
  short, garbage, stale entries past a cut tail).
"""

from __future__ import annotations

import mmap
import os
import re
from dataclasses import dataclass, field
from typing import Literal

from .errors import CorruptLogError, write_failed
from .fileio import FileIO
from .record import (
    FRAME_HEADER,
    SEGMENT_HEADER,
    FrameInfo,
    check_segment_header,
    encode_segment_header,
    parse_frame,
)
from .segment import Segment, SegmentState, segment_name

RecoverMode = Literal["refuse", "truncate"]

_SEGMENT_FILE = re.compile(r"^(\d{20})\.(log|index)$")
_TEMP_SUFFIXES = (".tmp", ".cleaned", ".swap")


@dataclass(frozen=True)
class RecoveryEvent:
    """One thing recovery did, with where and how much."""

    pass_number: int
    action: str
    path: str
    detail: str
    position: int | None = None
    offset: int | None = None
    bytes_removed: int = 0
    records_removed: int | None = None


@dataclass
class RecoveryReport:
    """What opening a partition directory found and changed."""

    events: list[RecoveryEvent] = field(default_factory=list)
    segments_scanned: int = 0
    bytes_scanned: int = 0

    @property
    def truncated_bytes(self) -> int:
        return sum(e.bytes_removed for e in self.events)

    def actions(self, action: str) -> list[RecoveryEvent]:
        return [e for e in self.events if e.action == action]


@dataclass
class _Scan:
    state: SegmentState
    bad: tuple[int, str] | None


@dataclass(frozen=True)
class SegmentSettings:
    io: FileIO
    frame_bytes_max: int
    index_interval_bytes: int
    index_capacity: int
    bytes_max: int


def load_segments(directory: str, settings: SegmentSettings, recover: RecoverMode) -> tuple[list[Segment], RecoveryReport]:
    """Run the recovery passes over `directory` and open its segments."""
    report = RecoveryReport()
    bases = _pass1_inventory(directory, settings.io, report)
    if not bases:
        return [Segment.create(directory, 0, **segment_kwargs(settings))], report
    try:
        states = _pass2_sealed(directory, bases, settings, recover, report)
        if not report.actions("truncated_damage"):
            states.append(_pass3_active(directory, bases, states, settings, recover, report))
        _pass4_sync(directory, _log_path(directory, bases[len(states) - 1]), settings.io, report)
    except OSError as e:
        raise write_failed(f"recovery of {directory} failed", e) from e
    return _pass5_indexes(directory, bases[: len(states)], states, settings, report), report


def segment_kwargs(settings: SegmentSettings) -> dict:
    """The keyword arguments of `Segment` and `Segment.create`."""
    return {"io": settings.io, "frame_bytes_max": settings.frame_bytes_max,
            "index_interval_bytes": settings.index_interval_bytes, "index_capacity": settings.index_capacity,
            "bytes_max": settings.bytes_max}


def _pass1_inventory(directory: str, io: FileIO, report: RecoveryReport) -> list[int]:
    logs: set[int] = set()
    indexes: set[int] = set()
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        match = _SEGMENT_FILE.match(name)
        if match:
            (logs if match.group(2) == "log" else indexes).add(int(match.group(1)))
        elif name.endswith(_TEMP_SUFFIXES):
            io.unlink(path)
            report.events.append(RecoveryEvent(1, "removed_stray_file", path, "temporary file left by an interrupted write"))
        else:
            raise CorruptLogError(path, 0, None, "unexpected file in a partition directory")
    for base in sorted(indexes - logs):
        path = os.path.join(directory, segment_name(base) + ".index")
        io.unlink(path)
        report.events.append(RecoveryEvent(1, "removed_stray_file", path, "index without a segment"))
    return sorted(logs)


def _pass2_sealed(directory: str, bases: list[int], settings: SegmentSettings,
                  recover: RecoverMode, report: RecoveryReport) -> list[SegmentState]:
    states: list[SegmentState] = []
    for i, base in enumerate(bases[:-1]):
        path = _log_path(directory, base)
        if states and states[-1].end_offset != base:
            _refuse_or_cut(2, directory, bases, i - 1, states, (states[-1].size, _gap_reason(states[-1], base)),
                           settings, recover, report)
            return states
        header_problem = _header_problem(path, base)
        if header_problem is not None and recover == "truncate":
            _restart_segment(directory, bases, i, states, header_problem, settings, report)
            return states
        scan = _scan_segment(path, base, settings, sealed=True)
        states.append(scan.state)
        if scan.bad is not None:
            _refuse_or_cut(2, directory, bases, i, states, scan.bad, settings, recover, report)
            return states
    if states and states[-1].end_offset != bases[-1]:
        _refuse_or_cut(2, directory, bases, len(states) - 1, states, (states[-1].size, _gap_reason(states[-1], bases[-1])),
                       settings, recover, report)
    return states


def _gap_reason(state: SegmentState, next_base: int) -> str:
    return f"segment ends at offset {state.end_offset} but the next segment starts at {next_base}"


def _pass3_active(directory: str, bases: list[int], states: list[SegmentState], settings: SegmentSettings,
                  recover: RecoverMode, report: RecoveryReport) -> SegmentState:
    base = bases[-1]
    path = _log_path(directory, base)
    _repair_torn_header(path, base, settings.io, report)
    scan = _scan_segment(path, base, settings, sealed=False)
    if scan.bad is None:
        return scan.state
    position, reason = scan.bad
    size = os.path.getsize(path)
    following = _valid_frames_after(path, position + 1, settings.frame_bytes_max)
    if following:
        _refuse_or_cut(3, directory, bases, len(states), states + [scan.state], scan.bad, settings, recover, report)
        return scan.state
    _cut(path, position, settings.io)
    report.events.append(RecoveryEvent(
        3, "truncated_tail", path, f"torn tail: {reason}", position=position,
        offset=scan.state.end_offset, bytes_removed=size - position))
    return scan.state


def _repair_torn_header(path: str, base: int, io: FileIO, report: RecoveryReport) -> None:
    with open(path, "rb") as f:
        head = f.read(SEGMENT_HEADER.size)
    expected = encode_segment_header(base)
    if len(head) == SEGMENT_HEADER.size:
        return
    if not expected.startswith(head) and any(head):
        return
    fd = io.open(path, os.O_WRONLY)
    try:
        io.ftruncate(fd, 0)
        io.writev(fd, [expected])
        io.fdatasync(fd)
    finally:
        io.close(fd)
    report.events.append(RecoveryEvent(3, "rewrote_header", path, f"segment header was {len(head)} bytes, torn at creation",
                                       position=0, offset=base, bytes_removed=len(head)))


def _refuse_or_cut(pass_number: int, directory: str, bases: list[int], i: int, states: list[SegmentState],
                   bad: tuple[int, str], settings: SegmentSettings, recover: RecoverMode,
                   report: RecoveryReport) -> None:
    """Damage in segment `i` at `bad`: refuse, or cut there and drop all after."""
    position, reason = bad
    path = _log_path(directory, bases[i])
    offset = states[i].end_offset
    if recover != "truncate":
        raise CorruptLogError(path, position, offset, reason + "; open with recover='truncate' to cut the log here")
    following = _valid_frames_after(path, position, settings.frame_bytes_max)
    lost_records = sum(f.count for f in following)
    lost_bytes = os.path.getsize(path) - position
    if lost_bytes:
        resume = following[0].first_offset if following else (bases[i + 1] if i + 1 < len(bases) else offset)
        lost_records += resume - offset
    _cut(path, position, settings.io)
    for later in bases[i + 1:]:
        later_path = _log_path(directory, later)
        if os.path.exists(later_path):
            lost_records += sum(f.count for f in _valid_frames_after(later_path, SEGMENT_HEADER.size, settings.frame_bytes_max))
            lost_bytes += os.path.getsize(later_path)
            settings.io.unlink(later_path)
        index_path = os.path.join(directory, segment_name(later) + ".index")
        if os.path.exists(index_path):
            settings.io.unlink(index_path)
    del states[i + 1:]
    report.events.append(RecoveryEvent(pass_number, "truncated_damage", path, reason, position=position, offset=offset,
                                       bytes_removed=lost_bytes, records_removed=lost_records))


def _header_problem(path: str, base: int) -> str | None:
    with open(path, "rb") as f:
        head = f.read(SEGMENT_HEADER.size)
    return "segment file is empty" if not head else check_segment_header(head, base)


def _restart_segment(directory: str, bases: list[int], i: int, states: list[SegmentState], reason: str,
                     settings: SegmentSettings, report: RecoveryReport) -> None:
    """`recover="truncate"` of a sealed segment whose header is damaged: its
    frames cannot be trusted, so it becomes an empty segment (a new header)
    and every later segment goes; the log continues from its base offset."""
    base = bases[i]
    path = _log_path(directory, base)
    lost_bytes = max(0, os.path.getsize(path) - SEGMENT_HEADER.size)
    lost_records = (bases[i + 1] if i + 1 < len(bases) else base) - base
    for later in bases[i + 1:]:
        later_path = _log_path(directory, later)
        lost_records += sum(f.count for f in _valid_frames_after(later_path, SEGMENT_HEADER.size,
                                                                  settings.frame_bytes_max))
        lost_bytes += os.path.getsize(later_path)
        settings.io.unlink(later_path)
        index_path = os.path.join(directory, segment_name(later) + ".index")
        if os.path.exists(index_path):
            settings.io.unlink(index_path)
    fd = settings.io.open(path, os.O_WRONLY)
    try:
        settings.io.ftruncate(fd, 0)
        settings.io.writev(fd, [encode_segment_header(base)])
        settings.io.fdatasync(fd)
    finally:
        settings.io.close(fd)
    states.append(SegmentState(base, SEGMENT_HEADER.size, None, None, []))
    report.events.append(RecoveryEvent(2, "truncated_damage", path, reason, position=0, offset=base,
                                       bytes_removed=lost_bytes, records_removed=lost_records))


def _scan_segment(path: str, base: int, settings: SegmentSettings, *, sealed: bool) -> _Scan:
    """Every valid frame from the header on, and where (and why) they stop."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise CorruptLogError(path, 0, base, "segment file is empty")
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mm:
            reason = check_segment_header(mm[: SEGMENT_HEADER.size], base)
            if reason is not None:
                raise CorruptLogError(path, 0, base, reason)
            return _scan_frames(mm, size, base, settings, sealed)


def _scan_frames(mm: mmap.mmap, size: int, base: int, settings: SegmentSettings, sealed: bool) -> _Scan:
    position = SEGMENT_HEADER.size
    expected = base
    entries: list[tuple[int, int]] = []
    last_indexed = -settings.index_interval_bytes
    first_ms = last_ms = None
    interval = settings.index_interval_bytes
    frame_bytes_max = settings.frame_bytes_max
    bad = None
    while position < size:
        frame = parse_frame(mm, position, size, frame_bytes_max)
        if type(frame) is not FrameInfo:
            why = "file ends inside a frame" if not hasattr(frame, "reason") else frame.reason
            bad = (position, why + (" in a sealed segment" if sealed else ""))
            break
        if frame.first_offset != expected:
            bad = (position, f"frame starts at offset {frame.first_offset}, expected {expected}")
            break
        if position - last_indexed >= interval:
            entries.append((expected - base, position))
            last_indexed = position
        if first_ms is None:
            first_ms = frame.received_ms
        last_ms = frame.received_ms
        expected += frame.count
        position += frame.size
    return _Scan(SegmentState(expected, position, first_ms, last_ms, entries), bad)


def _valid_frames_after(path: str, start: int, frame_bytes_max: int) -> list[FrameInfo]:
    """Valid frames anywhere at or after byte `start`, found by their fixed prefix."""
    frames: list[FrameInfo] = []
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size <= start:
            return frames
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mm:
            candidate = mm.find(b"\x93\xcf", start + FRAME_HEADER.size)
            while candidate != -1:
                frame = parse_frame(mm, candidate - FRAME_HEADER.size, size, frame_bytes_max)
                if type(frame) is FrameInfo:
                    frames.append(frame)
                    candidate = mm.find(b"\x93\xcf", frame.end_position + FRAME_HEADER.size)
                else:
                    candidate = mm.find(b"\x93\xcf", candidate + 1)
    return frames


def _cut(path: str, size: int, io: FileIO) -> None:
    fd = io.open(path, os.O_WRONLY)
    try:
        io.ftruncate(fd, size)
        io.fdatasync(fd)
    finally:
        io.close(fd)


def _pass5_indexes(directory: str, bases: list[int], states: list[SegmentState], settings: SegmentSettings,
                   report: RecoveryReport) -> list[Segment]:
    segments = []
    for i, (base, state) in enumerate(zip(bases, states)):
        kwargs = segment_kwargs(settings)
        if i < len(states) - 1:
            kwargs["index_capacity"] = len(state.index_entries)
        segment = Segment(directory, base, state, **kwargs)
        if segment.index.rebuilt:
            report.events.append(RecoveryEvent(5, "rebuilt_index", segment.index_path,
                                               f"index did not match the log; rewrote {len(state.index_entries)} entries"))
        report.segments_scanned += 1
        report.bytes_scanned += state.size
        segments.append(segment)
    return segments


def _pass4_sync(directory: str, active_path: str, io: FileIO, report: RecoveryReport) -> None:
    fd = io.open(active_path, os.O_RDONLY)
    try:
        io.fdatasync(fd)
    finally:
        io.close(fd)
    # Always: a crash between creating a segment and syncing the directory
    # leaves a file whose name is not durable, though it looks complete.
    io.fsync_dir(directory)


def _log_path(directory: str, base: int) -> str:
    return os.path.join(directory, segment_name(base) + ".log")
