"""The sparse offset index of one segment: a preallocated, mmap'd array.

Each 8-byte entry is (offset relative to the segment's base, byte position
of the frame holding it), both u32 little-endian, strictly increasing. The
segment adds an entry for its first frame and then for the first frame
starting at least `index_interval_bytes` after the previous entry, so the
entries are a pure function of the log and can always be rebuilt from it.

The active segment's file is preallocated (sparse) to its capacity, zeros
after the last entry; entries are written with pwrite and read through the
map. Sealing trims the file to its entries. The index is derived data and
is never fsynced: the loader compares it with what the log implies and
rewrites it when they differ.
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
from collections.abc import Iterable, Sequence
from typing import Final

ENTRY: Final = struct.Struct("<II")


def encode_entries(entries: Iterable[tuple[int, int]]) -> bytes:
    return b"".join(ENTRY.pack(rel, pos) for rel, pos in entries)


class OffsetIndex:
    """Entries in a memory map over the `.index` file."""

    def __init__(self, path: str, entries: Sequence[tuple[int, int]], capacity: int) -> None:
        """Open `path` holding exactly `entries`, rewriting the file if it differs.

        `capacity` is the preallocated number of entries (active segment);
        pass `len(entries)` for a sealed segment. `rebuilt` tells whether
        the file had to be rewritten.
        """
        assert capacity >= len(entries)
        self.path = path
        self._count = len(entries)
        self._capacity = capacity
        expected = encode_entries(entries)
        size = capacity * ENTRY.size
        self.rebuilt = not _file_holds(path, expected, size)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if self.rebuilt:
                os.ftruncate(fd, 0)
                os.ftruncate(fd, size)
                os.pwrite(fd, expected, 0)
            self._mm = mmap.mmap(fd, size) if size else None
        except BaseException:
            os.close(fd)
            raise
        # Appends go through the descriptor: writing a hole of the sparse
        # file through the map on a full disk would kill the process with
        # SIGBUS, where pwrite raises ENOSPC. A full index takes none.
        self._fd: int | None = fd
        if self.full:
            self._close_fd()

    @property
    def count(self) -> int:
        return self._count

    @property
    def full(self) -> bool:
        return self._count >= self._capacity

    def entry(self, i: int) -> tuple[int, int]:
        assert 0 <= i < self._count and self._mm is not None
        return ENTRY.unpack_from(self._mm, i * ENTRY.size)

    def append(self, relative_offset: int, position: int) -> None:
        """Add an entry; `OSError` (ENOSPC, EFBIG) when the disk has no room for it."""
        assert not self.full and self._fd is not None
        if self._count:
            last_rel, last_pos = self.entry(self._count - 1)
            assert relative_offset > last_rel and position > last_pos, "index entries must increase"
        entry = ENTRY.pack(relative_offset, position)
        if os.pwrite(self._fd, entry, self._count * ENTRY.size) != len(entry):
            raise OSError(errno.ENOSPC, "short write to the index")
        self._count += 1

    def floor(self, relative_offset: int) -> tuple[int, int] | None:
        """The last entry whose relative offset is <= `relative_offset`."""
        lo, hi = 0, self._count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.entry(mid)[0] <= relative_offset:
                lo = mid + 1
            else:
                hi = mid
        return self.entry(lo - 1) if lo else None

    def truncate(self, count: int) -> None:
        """Forget the entries from `count` on (their frames were cut back)."""
        assert 0 <= count <= self._count
        if self._mm is not None:
            self._mm[count * ENTRY.size : self._count * ENTRY.size] = bytes((self._count - count) * ENTRY.size)
        self._count = count

    def seal(self) -> None:
        """Trim the file to its entries; no more appends.

        The map stays as it is, so readers holding it are unaffected; no
        access ever goes past the last entry, which the file still holds.
        """
        os.truncate(self.path, self._count * ENTRY.size)
        self._capacity = self._count
        self._close_fd()

    def close(self) -> None:
        self._close_fd()
        if self._mm is not None:
            self._mm.close()
            self._mm = None

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _file_holds(path: str, expected: bytes, size: int) -> bool:
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size != size:
                return False
            data = f.read()
    except FileNotFoundError:
        return False
    return data.startswith(expected) and data.count(0, len(expected)) == size - len(expected)
