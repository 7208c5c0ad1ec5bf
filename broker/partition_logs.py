"""The partition logs of every event type: where they live on disk, opening
them at start-up, and appending to and reading from them from trio.

Layout: `<data_dir>/event-types/<event type name>/<partition id>/`, one
`storage.PartitionLog` per partition directory. Names reach the file
system only after `is_valid_name` accepts them (ASCII letters, digits,
`-`, `_` and single dots: no separator, no `..`), whatever the caller checked.

Every call that may touch the disk (append with its fsync, reads,
retention, opening, deleting) runs in a worker thread, so the event loop
never blocks on disk; concurrent appends share a thread call and, per
partition, an fsync (`group_commit`). Storage errors are translated here, once.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence

import trio

from storage import (
    DiskFullError,
    FileIO,
    LogConfig,
    OffsetOutOfRangeError,
    PartitionLog,
    Run,
    StorageError,
)

from .errors import BrokerError, InsufficientStorageError, NotFoundError, PreconditionFailedError, UnavailableError
from .event_types import is_valid_name
from .group_commit import GroupCommit

EVENT_TYPES_DIR = "event-types"

_log = logging.getLogger(__name__)


class PartitionLogs:
    """Open partition logs, by event type name and partition index."""

    def __init__(self, data_dir: str, config: LogConfig, recover: str, io: FileIO | None = None) -> None:
        self._root = os.path.join(data_dir, EVENT_TYPES_DIR)
        self._config = config
        self._recover = recover
        self.io = io or FileIO()
        self._logs: dict[str, list[PartitionLog]] = {}
        self._appended: dict[str, trio.Event] = {}
        self._committer = GroupCommit()
        self.streams_ended = False
        # Why the last append failed, until one succeeds: what /ready reports.
        self.write_failure: str | None = None

    # -- lifecycle (start-up and shutdown run before/after serving) ----------

    def open_all(self, partition_counts: dict[str, int]) -> None:
        """Open the logs of every known event type, running recovery; remove
        directories no event type owns (left by an interrupted create or delete)."""
        if not os.path.isdir(self._root):
            os.makedirs(self._root)
            self.io.fsync_dir(os.path.dirname(self._root))
        for name in sorted(os.listdir(self._root)):
            if name not in partition_counts:
                shutil.rmtree(os.path.join(self._root, name))
        for name, count in partition_counts.items():
            self._logs[name] = [self._open(name, p) for p in range(count)]

    def close_all(self) -> None:
        for logs in self._logs.values():
            for log in logs:
                log.close()
        self._logs.clear()

    def _directory(self, name: str, partition: int | None = None) -> str:
        if not is_valid_name(name):
            raise ValueError(f"refusing an unsafe event type name {name!r} as a directory name")
        path = os.path.join(self._root, name)
        return path if partition is None else os.path.join(path, str(partition))

    def _open(self, name: str, partition: int) -> PartitionLog:
        log = PartitionLog.open(self._directory(name, partition), self._config, io=self.io, recover=self._recover)
        for event in log.recovery.events:
            records = "" if event.records_removed is None else f", {event.records_removed} records"
            _log.warning("recovery of %s partition %d: %s %s at byte %s (offset %s): %s; %d bytes%s removed",
                         name, partition, event.action, event.path, event.position, event.offset, event.detail,
                         event.bytes_removed, records)
        return log

    async def create(self, name: str, partitions: int) -> None:
        """Create (empty) logs for a new event type."""
        def create() -> list[PartitionLog]:
            os.makedirs(self._directory(name), exist_ok=True)
            self.io.fsync_dir(self._root)  # the event type's directory is durable before its logs
            return [self._open(name, p) for p in range(partitions)]
        try:
            self._logs[name] = await trio.to_thread.run_sync(create)
        except DiskFullError as e:
            raise InsufficientStorageError(f"the disk is full: {e}") from e
        except (StorageError, OSError) as e:
            raise UnavailableError(f"cannot create the partitions of {name}: {e}") from e

    async def delete(self, name: str) -> None:
        """Close and remove every partition of `name`."""
        logs = self._logs.pop(name, [])
        self._notify(name)

        def delete() -> None:
            for log in logs:
                log.close()
            shutil.rmtree(self._directory(name), ignore_errors=True)
        await trio.to_thread.run_sync(delete)

    # -- offsets ---------------------------------------------------------

    def _log(self, name: str, partition: int) -> PartitionLog:
        """The log of a partition; 404 if its event type was deleted meanwhile."""
        try:
            return self._logs[name][partition]
        except KeyError:
            raise NotFoundError(f"EventType \"{name}\" does not exist.") from None

    def has(self, name: str) -> bool:
        return name in self._logs

    def appended(self, name: str) -> trio.Event:
        """An event set at the next acknowledged append to `name`, its
        deletion, or when streams must end."""
        return self._appended.setdefault(name, trio.Event())

    def end_streams(self) -> None:
        """Tell every stream to end (`streams_ended`) and wake them all."""
        self.streams_ended = True
        for name in list(self._appended):
            self._notify(name)

    def _notify(self, name: str) -> None:
        event = self._appended.pop(name, None)
        if event is not None:
            event.set()

    def bounds(self, name: str, partition: int) -> tuple[int, int]:
        """[start_offset, end_offset) of the acknowledged records of a partition."""
        log = self._logs[name][partition]
        return log.start_offset, log.end_offset

    def all_bounds(self, name: str) -> list[tuple[int, int]]:
        return [(log.start_offset, log.end_offset) for log in self._logs[name]]

    def size_bytes(self, name: str) -> int:
        """The bytes the segments of every partition of `name` take."""
        return sum(log.statistics().size_bytes for log in self._logs.get(name, []))

    # -- appending and reading -----------------------------------------------

    async def append(self, name: str, groups: Mapping[int, Sequence[bytes]]) -> dict[int, BrokerError]:
        """Append each partition's payloads as one frame, durably (per the
        durability policy), all in one group-commit round; the partitions
        whose append failed, with why."""
        failures: dict[int, BrokerError] = {}
        appends: list[tuple[int, PartitionLog, Sequence[bytes]]] = []
        for partition, payloads in groups.items():
            try:
                appends.append((partition, self._log(name, partition), payloads))
            except NotFoundError as e:  # deleted since the publish looked its event type up
                failures[partition] = e
        outcomes = await self._committer.append([(log, payloads) for _, log, payloads in appends]) if appends else []
        for (partition, _, _), outcome in zip(appends, outcomes, strict=True):
            if isinstance(outcome, DiskFullError):
                self.write_failure = f"the disk is full: {outcome}"
                failures[partition] = InsufficientStorageError(self.write_failure)
            elif isinstance(outcome, StorageError):
                self.write_failure = f"storage failed: {outcome}"
                failures[partition] = UnavailableError(self.write_failure)
            elif isinstance(outcome, Exception):
                raise outcome
        if len(failures) < len(groups):
            if not failures:
                self.write_failure = None
            self._notify(name)
        return failures

    async def read_runs(self, name: str, partition: int, offset: int, max_records: int,
                        max_bytes: int) -> list[Run]:
        """Acknowledged records from `offset` on (see `PartitionLog.read_runs`):
        read in the event loop when the page cache holds them, as it holds
        what was just written, else in a worker thread."""
        log = self._log(name, partition)
        await trio.lowlevel.checkpoint()
        try:
            try:
                return log.read_runs(offset, max_records, max_bytes, cached_only=True)
            except BlockingIOError:
                return await trio.to_thread.run_sync(log.read_runs, offset, max_records, max_bytes)
        except OffsetOutOfRangeError as e:
            raise PreconditionFailedError(str(e)) from e
        except StorageError as e:
            raise UnavailableError(f"storage failed: {e}") from e

    async def offset_at_or_after(self, name: str, partition: int, ms: int) -> int:
        """The first offset received at or after `ms` (the end offset if none)."""
        log = self._log(name, partition)
        try:
            return await trio.to_thread.run_sync(log.offset_at_or_after, ms)
        except StorageError as e:
            raise UnavailableError(f"storage failed: {e}") from e

    async def received_ms(self, name: str, partition: int, offset: int) -> int | None:
        """When the record at `offset` was received, or None if it is not retained."""
        start, end = self.bounds(name, partition)
        if not start <= offset < end:
            return None
        runs = await self.read_runs(name, partition, offset, 1, 1)
        return runs[0].received_ms if runs else None

    async def enforce_retention(self, name: str, retention_ms: int) -> int:
        """Delete whole segments older than `retention_ms`; how many were deleted."""
        logs: Iterable[PartitionLog] = list(self._logs.get(name, []))

        def enforce() -> int:
            return sum(log.enforce_retention(retention_ms=retention_ms) for log in logs)
        try:
            return await trio.to_thread.run_sync(enforce)
        except StorageError as e:
            raise UnavailableError(f"retention of {name} failed: {e}") from e
