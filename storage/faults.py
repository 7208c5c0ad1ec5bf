"""Test-only fault hooks of a running server, as a `FileIO`: stop the
process with SIGKILL at the n-th pass of a named crash point, and trace
every successful sync so a harness can simulate power loss (cut each file
back to anywhere between what was synced and what was written).

The server builds one from `NAKADI_FAULT=<point>:<n>` and
`NAKADI_SYNC_TRACE=<path>` (see `api/cli.py`); nothing here reads the
environment. The crash points:

| point | where |
|---|---|
| `log.written` | a frame is written, before its fdatasync |
| `log.synced` | the fdatasync returned, before the durable end moves |
| `log.durable` | the durable end moved, before the append is answered |
| `log.roll.synced` | a roll synced the old segment, before the new one exists |
| `log.roll.created` | the new segment exists, before its directory is synced |
| `cursor.commit.written` | a subscription commit is in SQLite, before the 204 |

The trace has one line per sync, `<path>\t<length>`: after an fdatasync,
the file's length then; after a directory fsync, the directory and -1
(the names in it are durable).
"""

from __future__ import annotations

import os
import signal
import threading

from .fileio import FileIO

CRASH_POINTS = ("log.written", "log.synced", "log.durable", "log.roll.synced", "log.roll.created",
                "cursor.commit.written")


def parse_fault(spec: str) -> tuple[str, int]:
    """`<point>:<n>` as (point, n); `ValueError` naming what is wrong."""
    point, _, count = spec.rpartition(":")
    if point not in CRASH_POINTS:
        raise ValueError(f"unknown crash point {point!r}; known: {', '.join(CRASH_POINTS)}")
    if not count.isdigit() or int(count) < 1:
        raise ValueError(f"the pass count of {spec!r} must be a positive integer")
    return point, int(count)


class FaultIO(FileIO):
    """`FileIO` that kills its own process at `crash_at` = (point, n) and
    appends each sync to the file `sync_trace`."""

    def __init__(self, crash_at: tuple[str, int] | None = None, sync_trace: str | None = None) -> None:
        self._crash_at = crash_at
        self._passes = 0
        self._paths: dict[int, str] = {}
        self._lock = threading.Lock()
        # A raw descriptor: each record is one O_APPEND write, in the page
        # cache when the process is killed, and lives as long as the process.
        self._trace = None if sync_trace is None else os.open(
            sync_trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def open(self, path: str, flags: int) -> int:
        fd = super().open(path, flags)
        self._paths[fd] = os.path.abspath(path)
        return fd

    def close(self, fd: int) -> None:
        self._paths.pop(fd, None)
        super().close(fd)

    def fdatasync(self, fd: int) -> None:
        # The length before the call: a write racing the sync may not be in it.
        length = os.fstat(fd).st_size
        super().fdatasync(fd)
        self._record(self._paths.get(fd, f"fd {fd}"), length)

    def fsync_dir(self, path: str) -> None:
        super().fsync_dir(path)
        self._record(os.path.abspath(path), -1)

    def crash_point(self, name: str) -> None:
        if self._crash_at is None or name != self._crash_at[0]:
            return
        with self._lock:
            self._passes += 1
            if self._passes == self._crash_at[1]:
                os.kill(os.getpid(), signal.SIGKILL)

    def _record(self, path: str, length: int) -> None:
        if self._trace is not None:
            os.write(self._trace, f"{path}\t{length}\n".encode())
