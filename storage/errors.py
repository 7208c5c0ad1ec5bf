"""The storage layer's exceptions: one small tree under `StorageError`.

Callers above storage translate these once, at their own boundary.
"""

from __future__ import annotations

import errno as _errno
import os


class StorageError(Exception):
    """Base of every error raised by storage."""


class LogClosedError(StorageError):
    """The log was closed by its owner; nothing more can be done with it."""


class OffsetOutOfRangeError(StorageError):
    """A read asked for an offset outside [start_offset, end_offset]."""

    def __init__(self, offset: int, start_offset: int, end_offset: int) -> None:
        super().__init__(
            f"offset {offset} is outside the retained range [{start_offset}, {end_offset}]"
        )
        self.offset = offset
        self.start_offset = start_offset
        self.end_offset = end_offset


class BatchTooLargeError(StorageError):
    """A batch does not fit in one frame (`frame_bytes_max`)."""


class CorruptLogError(StorageError):
    """Stored bytes failed a check; names the file, byte position and offset."""

    def __init__(self, path: str | os.PathLike[str], position: int, offset: int | None, reason: str) -> None:
        where = f"{os.fspath(path)} at byte {position}"
        if offset is not None:
            where += f" (offset {offset})"
        super().__init__(f"{where}: {reason}")
        self.path = os.fspath(path)
        self.position = position
        self.offset = offset
        self.reason = reason


class WriteFailedError(StorageError):
    """An append or its fsync failed; nothing of it was acknowledged.

    The underlying `OSError` is the `__cause__`; `errno` repeats its code.
    """

    def __init__(self, message: str, errno: int | None) -> None:
        name = _errno.errorcode.get(errno, "unknown") if errno is not None else "unknown"
        super().__init__(f"{message} ({name})")
        self.errno = errno


class DiskFullError(WriteFailedError):
    """The file system refused more bytes (ENOSPC, EFBIG or EDQUOT)."""


class LogFailedError(StorageError):
    """The log could not restore a consistent state after an I/O error.

    Reads of acknowledged records still work; writes need the log reopened.
    """


DISK_FULL_ERRNOS = frozenset({_errno.ENOSPC, _errno.EFBIG, _errno.EDQUOT})


def write_failed(message: str, error: OSError) -> WriteFailedError:
    """The `WriteFailedError` subclass that fits an `OSError`."""
    cls = DiskFullError if error.errno in DISK_FULL_ERRNOS else WriteFailedError
    return cls(message, error.errno)
