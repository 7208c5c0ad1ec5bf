"""The data directory's lock: one broker per data directory, whether served
by `nakadi serve` or embedded, so two never write the same logs."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"


class DataDirError(Exception):
    """The data directory cannot be used (not creatable, or held by another broker)."""


@contextmanager
def locked_data_dir(data_dir: Path) -> Iterator[None]:
    """Create `data_dir` if missing and hold an exclusive lock on it, so no
    second broker can share it. The lock file names its holder's pid."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise DataDirError(f"cannot use data directory {data_dir}: {error.strerror}") from error
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise DataDirError(f"data directory {data_dir} is in use by another nakadi (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
