"""The file operations storage performs, as one replaceable object.

Every write-side system call of the log goes through a `FileIO`, so tests
(and the server's fault hooks) can fail the k-th call with ENOSPC or EIO,
return short writes, record what was synced, or stop the process at a
named crash point. The default implementation calls `os` directly.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence

_FALLOC_FL_KEEP_SIZE = 1


def _libc_fallocate() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """Linux's fallocate(2), which `os` offers only without its flags."""
    try:
        function = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function


_FALLOCATE = _libc_fallocate()


_RWF_NOWAIT = getattr(os, "RWF_NOWAIT", None)


class FileIO:
    """Direct system calls. Subclass and override to inject faults."""

    def open(self, path: str, flags: int) -> int:
        return os.open(path, flags | os.O_CLOEXEC, 0o644)

    def close(self, fd: int) -> None:
        os.close(fd)

    def writev(self, fd: int, parts: Sequence[bytes | memoryview]) -> int:
        return os.writev(fd, parts)

    def pread(self, fd: int, size: int, position: int) -> bytes:
        return os.pread(fd, size, position)

    reads_without_wait = _RWF_NOWAIT is not None
    """Whether `pread_cached` can tell what the page cache holds: false without
    `RWF_NOWAIT`, or once the file system refused it (tmpfs does)."""

    def pread_cached(self, fd: int, size: int, position: int) -> bytes:
        """`pread` of bytes the page cache holds: `BlockingIOError` when any
        of them would have to come from the disk, or when the system cannot
        tell (`reads_without_wait`)."""
        if not self.reads_without_wait:
            raise BlockingIOError(errno.EAGAIN, "reads without waiting are not supported here")
        buffer = bytearray(size)
        try:
            count = os.preadv(fd, [buffer], position, _RWF_NOWAIT)
        except OSError as e:
            if e.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                self.reads_without_wait = False
                raise BlockingIOError(errno.EAGAIN, "reads without waiting are not supported here") from e
            raise
        if count < size:  # the cached part ends here; the rest may be on disk
            raise BlockingIOError(errno.EAGAIN, "only part of the range is cached")
        return bytes(buffer)

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)

    def preallocate(self, fd: int, position: int, length: int) -> None:
        """Allocate disk blocks for [position, position + length) without
        changing the file's size (`FALLOC_FL_KEEP_SIZE`). Raises `OSError`
        where that is not supported."""
        if _FALLOCATE is None:
            raise OSError("fallocate is not available here")
        if _FALLOCATE(fd, _FALLOC_FL_KEEP_SIZE, position, length) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))

    def ftruncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def crash_point(self, name: str) -> None:
        """Called at each named point where a crash is worth testing."""
