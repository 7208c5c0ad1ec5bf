"""What the broker reports about its work: plain calls on an `Observer`.

The broker knows no metrics library. It calls its observer where the
facts are (a publish acknowledged, an fdatasync done, a stream opened,
events sent, a stream ended and why); `api/metrics.py` turns the calls
into Prometheus metrics. Gauges that are states rather than events
(storage bytes, committed lag) the broker answers when asked instead.

`Observer` itself does nothing, so the broker works without one. Its
`synced` runs in a worker thread: an implementation must be thread-safe.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from storage import FileIO


class StreamEnd(enum.Enum):
    """Why a stream ended."""

    STREAM_LIMIT = "stream limit"
    STREAM_TIMEOUT = "stream timeout"
    KEEP_ALIVE_LIMIT = "keep-alive limit"
    COMMIT_TIMEOUT = "commit timeout"
    IDLE = "idle"  # a subscription stream without partitions for two commit timeouts
    CLOSED = "closed"  # a subscription's cursors were reset, or it was deleted
    DELETED = "deleted"  # the event type was deleted
    CLIENT_GONE = "client gone"
    ACCESS_LOST = "access lost"
    SHUTDOWN = "shutdown"
    ERROR = "error"


class Observer:
    """The broker's reports; each does nothing here."""

    def published(self, event_type: str, events: int, size_bytes: int, seconds: float) -> None:
        """A publish to `event_type` answered after `seconds`, having
        stored `events` events of `size_bytes` bytes (0 if it stored none)."""

    def synced(self, seconds: float) -> None:
        """An fdatasync of a partition log took `seconds` (in a worker thread)."""

    def stream_opened(self, stream: Stream) -> None:
        """A stream started sending."""

    def streamed(self, stream: Stream, event_type: str, events: int) -> None:
        """`stream` sent `events` events of `event_type`."""

    def stream_closed(self, stream: Stream, reason: StreamEnd) -> None:
        """`stream` ended, for `reason`."""


@dataclass(eq=False)
class Stream:
    """One open stream, as observers see it. `kind` is "event-type" (the
    low-level API) or "subscription"; `name` the event type or the
    subscription id. The stream's generator sets `end` when an end rule
    of its own stops it."""

    kind: str
    name: str
    stream_id: str
    flow_id: str
    observer: Observer
    end: StreamEnd | None = None
    events: int = 0

    def sent(self, event_type: str, events: int) -> None:
        if events:
            self.events += events
            self.observer.streamed(self, event_type, events)


class TimedSyncIO(FileIO):
    """`inner`'s system calls, with the time of each fdatasync given to
    `synced` (settable: the broker points it at its observer)."""

    def __init__(self, inner: FileIO) -> None:
        self.inner = inner
        self.synced: Callable[[float], None] = Observer().synced

    def fdatasync(self, fd: int) -> None:
        started = time.perf_counter()
        self.inner.fdatasync(fd)
        self.synced(time.perf_counter() - started)

    def open(self, path: str, flags: int) -> int:
        return self.inner.open(path, flags)

    def close(self, fd: int) -> None:
        self.inner.close(fd)

    def writev(self, fd: int, parts: Sequence[bytes | memoryview]) -> int:
        return self.inner.writev(fd, parts)

    def pread(self, fd: int, size: int, position: int) -> bytes:
        return self.inner.pread(fd, size, position)

    def pread_cached(self, fd: int, size: int, position: int) -> bytes:
        return self.inner.pread_cached(fd, size, position)

    def preallocate(self, fd: int, position: int, length: int) -> None:
        self.inner.preallocate(fd, position, length)

    def ftruncate(self, fd: int, size: int) -> None:
        self.inner.ftruncate(fd, size)

    def fsync_dir(self, path: str) -> None:
        self.inner.fsync_dir(path)

    def unlink(self, path: str) -> None:
        self.inner.unlink(path)

    def crash_point(self, name: str) -> None:
        self.inner.crash_point(name)
