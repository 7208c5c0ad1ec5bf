"""One segment: a `.log` file of frames and its `.index`, named by base offset.

A segment knows its files, its written end and how to append, cut back,
read and search by time within itself. Which segment is active, locking,
durability and retention belong to `log.py`.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from .errors import BatchTooLargeError, CorruptLogError, WriteFailedError, write_failed
from .fileio import FileIO
from .index import OffsetIndex
from .record import (
    BODY_PREFIX,
    FRAME_HEADER,
    FRAME_OVERHEAD,
    NEED_DATA,
    SEGMENT_HEADER,
    BadFrame,
    FrameInfo,
    Run,
    encode_frame,
    encode_segment_header,
    frame_payloads,
    parse_frame,
)

READ_CHUNK_BYTES: Final = 64 * 1024
# The largest read `cached_only` attempts: a read without waiting fills a
# fresh buffer and copies it (4x a plain pread's time for 1 MiB reads of a
# backlog), so larger ones go to a worker thread, while a live tail's reads
# of what was just written stay far below it.
CACHED_READ_BYTES_MAX: Final = 64 * 1024
# Blocks allocated ahead of the active segment's end, file size unchanged.
# An fdatasync after a write into allocated blocks commits less metadata:
# 0.17 against 0.24 ms for an 8 KB append on this machine's ext4.
PREALLOCATE_BYTES: Final = 4 * 1024 * 1024


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


def write_all(io: FileIO, fd: int, parts: list[bytes | memoryview], size: int) -> None:
    """Write every byte of `parts`; a short write is continued, so the
    error of the call that cannot go on (ENOSPC, EFBIG, EIO) is raised."""
    written = io.writev(fd, parts)
    if written < size:
        rest = memoryview(b"".join(parts))[written:]
        while rest:
            n = io.writev(fd, [rest])
            if n == 0:
                raise OSError(errno.ENOSPC, "write made no progress")
            rest = rest[n:]


@dataclass
class SegmentState:
    """What a scan of the `.log` file established."""

    end_offset: int
    size: int
    first_ms: int | None
    last_ms: int | None
    index_entries: list[tuple[int, int]]


class Segment:
    """The files of one base offset, open for reading and (if active) appending."""

    def __init__(self, directory: str, base_offset: int, state: SegmentState, *,
                 io: FileIO, frame_bytes_max: int, index_interval_bytes: int, index_capacity: int,
                 bytes_max: int) -> None:
        self.base_offset = base_offset
        self.log_path = os.path.join(directory, segment_name(base_offset) + ".log")
        self.index_path = os.path.join(directory, segment_name(base_offset) + ".index")
        self.end_offset = state.end_offset
        self.size = state.size
        self.first_ms = state.first_ms
        self.last_ms = state.last_ms
        self._io = io
        self._frame_bytes_max = frame_bytes_max
        self._bytes_max = bytes_max
        self._index_interval_bytes = index_interval_bytes
        try:
            self.index = OffsetIndex(self.index_path, state.index_entries,
                                     max(index_capacity, len(state.index_entries)))
        except OSError as e:
            raise write_failed(f"cannot write the index {self.index_path}", e) from e
        self._last_indexed_position = state.index_entries[-1][1] if state.index_entries else None
        self._fd = io.open(self.log_path, os.O_RDWR | os.O_APPEND)
        self._allocated_end = self.size
        self._pins = 0
        self._retired = False
        self._closed = False

    @classmethod
    def create(cls, directory: str, base_offset: int, *, io: FileIO, frame_bytes_max: int,
               index_interval_bytes: int, index_capacity: int, bytes_max: int) -> Segment:
        """A new empty segment whose header is written and synced."""
        path = os.path.join(directory, segment_name(base_offset) + ".log")
        header = encode_segment_header(base_offset)
        fd = None
        try:
            fd = io.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            write_all(io, fd, [header], len(header))
            io.fdatasync(fd)
        except OSError as e:
            with contextlib.suppress(OSError):
                if fd is not None:
                    io.close(fd)
                io.unlink(path)
            raise write_failed(f"cannot create segment {path}", e) from e
        io.close(fd)
        state = SegmentState(base_offset, SEGMENT_HEADER.size, None, None, [])
        try:
            return cls(directory, base_offset, state, io=io, frame_bytes_max=frame_bytes_max,
                       index_interval_bytes=index_interval_bytes, index_capacity=index_capacity, bytes_max=bytes_max)
        except WriteFailedError:
            for leftover in (path, os.path.join(directory, segment_name(base_offset) + ".index")):
                with contextlib.suppress(OSError):
                    io.unlink(leftover)
            raise

    @property
    def empty(self) -> bool:
        return self.end_offset == self.base_offset

    @property
    def fd(self) -> int:
        return self._fd

    def index_full(self) -> bool:
        return self.index.full

    def write(self, received_ms: int, payloads: Sequence[bytes]) -> None:
        """Append one frame. On failure the file is cut back and the error raised.

        If even cutting back fails, the `OSError` of the cut is raised
        instead: the caller must treat the segment as broken.
        """
        parts, size = encode_frame(self.end_offset, received_ms, payloads)
        if size > self._frame_bytes_max:
            raise BatchTooLargeError(f"a frame of {size} bytes exceeds frame_bytes_max={self._frame_bytes_max}")
        position = self.size
        if position + size > self._allocated_end:
            self._preallocate(position + size)
        try:
            write_all(self._io, self._fd, parts, size)
        except OSError as e:
            self._io.ftruncate(self._fd, position)
            raise write_failed(f"append to {self.log_path} failed", e) from e
        if self._last_indexed_position is None or position - self._last_indexed_position >= self._index_interval_bytes:
            try:
                self.index.append(self.end_offset - self.base_offset, position)
            except OSError as e:
                self._io.ftruncate(self._fd, position)
                raise write_failed(f"indexing {self.log_path} failed", e) from e
            self._last_indexed_position = position
        self.size += size
        self.end_offset += len(payloads)
        if self.first_ms is None:
            self.first_ms = received_ms
        self.last_ms = received_ms

    def _preallocate(self, end: int) -> None:
        """Allocate blocks up to `end` and `PREALLOCATE_BYTES` beyond, within
        the segment's size limit (so a segment rolled for its size leaves
        less than a frame allocated past its end). Only an optimisation:
        where it fails (no space, no support) writes go on."""
        self._allocated_end = max(end, min(end + PREALLOCATE_BYTES, self._bytes_max))
        with contextlib.suppress(OSError):
            self._io.preallocate(self._fd, self.size, self._allocated_end - self.size)

    def cut_back(self, end_offset: int, size: int, first_ms: int | None, last_ms: int | None) -> None:
        """Forget everything written after (`end_offset`, `size`)."""
        self._io.ftruncate(self._fd, size)
        self._allocated_end = size
        count = self.index.count
        while count and self.index.entry(count - 1)[1] >= size:
            count -= 1
        self.index.truncate(count)
        self._last_indexed_position = self.index.entry(count - 1)[1] if count else None
        self.end_offset, self.size, self.first_ms, self.last_ms = end_offset, size, first_ms, last_ms

    def read(self, offset: int, max_records: int, max_bytes: int, end_position: int, *,
             cached_only: bool = False) -> list[Run]:
        """Records from `offset` on, as runs of consecutive records sharing a
        frame, stopping at `end_position`, `max_records` or before `max_bytes`
        of payload would be passed (but with at least one record).
        `cached_only`: `BlockingIOError` rather than wait for the disk."""
        runs: list[Run] = []
        count = total = 0
        for buf, frame in self._frames(self._position_for(offset), end_position, max_bytes + FRAME_OVERHEAD,
                                       cached_only=cached_only):
            if frame.end_offset <= offset:
                continue
            payloads = frame_payloads(buf, frame)
            first = max(offset, frame.first_offset)
            payloads = payloads[first - frame.first_offset:][: max_records - count]
            sizes = list(accumulate(map(len, payloads)))
            fit = bisect.bisect_right(sizes, max_bytes - total) or (0 if count else 1)
            if fit:
                runs.append(Run(first, frame.received_ms, payloads[:fit]))
                count += fit
                total += sizes[fit - 1]
            if fit < len(payloads) or count >= max_records or total >= max_bytes:
                break
        return runs

    def offset_at_or_after(self, ms: int, end_position: int) -> int | None:
        """The first offset received at or after `ms` in this segment, if any."""
        lo, hi = 0, self.index.count
        while lo < hi:
            mid = (lo + hi) // 2
            if self._received_ms_at(self.index.entry(mid)[1]) < ms:
                lo = mid + 1
            else:
                hi = mid
        start = self.index.entry(lo - 1)[1] if lo else SEGMENT_HEADER.size
        for _, frame in self._frames(start, end_position, READ_CHUNK_BYTES):
            if frame.received_ms >= ms:
                return frame.first_offset
        return None

    def _received_ms_at(self, position: int) -> int:
        data = self._io.pread(self._fd, FRAME_OVERHEAD, position)
        return BODY_PREFIX.unpack_from(data, FRAME_HEADER.size)[4]

    def _position_for(self, offset: int) -> int:
        entry = self.index.floor(offset - self.base_offset)
        return entry[1] if entry else SEGMENT_HEADER.size

    def _frames(self, position: int, end_position: int, chunk: int, *, cached_only: bool = False
                ) -> Iterator[tuple[memoryview | bytes, FrameInfo]]:
        """Valid frames from `position` to `end_position`, CRC checked, in order."""
        expected_offset: int | None = None
        chunk = max(chunk, READ_CHUNK_BYTES)
        pread = self._io.pread_cached if cached_only else self._io.pread
        while position < end_position:
            want = min(chunk, end_position - position)
            if cached_only and want > CACHED_READ_BYTES_MAX:
                raise BlockingIOError(errno.EAGAIN, f"a read of {want} bytes is for a worker thread")
            buf = pread(self._fd, want, position)
            p = 0
            while p < len(buf):
                frame = parse_frame(buf, p, len(buf), self._frame_bytes_max)
                if frame is NEED_DATA:
                    break
                if isinstance(frame, BadFrame):
                    raise CorruptLogError(self.log_path, position + p, expected_offset, frame.reason)
                if expected_offset is not None and frame.first_offset != expected_offset:
                    raise CorruptLogError(self.log_path, position + p, expected_offset,
                                          f"frame starts at offset {frame.first_offset}")
                expected_offset = frame.end_offset
                yield buf, frame
                p = frame.end_position
            if p == 0:
                if len(buf) < want or want < FRAME_HEADER.size:
                    raise CorruptLogError(self.log_path, position, expected_offset, "file ends inside a frame")
                needed = FRAME_HEADER.size + FRAME_HEADER.unpack_from(buf)[0]
                if needed > end_position - position:
                    raise CorruptLogError(self.log_path, position, expected_offset, "frame extends past the end")
                chunk = needed
                continue
            position += p

    def seal(self) -> None:
        self.index.seal()

    def pin(self) -> None:
        self._pins += 1

    def unpin(self) -> None:
        self._pins -= 1
        if self._retired and not self._pins:
            self._close_files()

    def retire(self, *, delete: bool) -> None:
        """Stop using the segment: close its files once no reader holds them."""
        if delete:
            self._io.unlink(self.log_path)
            try:
                os.unlink(self.index_path)
            except FileNotFoundError:
                pass
        self._retired = True
        if not self._pins:
            self._close_files()

    def _close_files(self) -> None:
        if not self._closed:
            self._closed = True
            self.index.close()
            self._io.close(self._fd)
