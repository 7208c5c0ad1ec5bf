"""A partition's log: its segments, appends with group commit, reads, roll
and retention. Synchronous and thread-safe; callers pick the threads.

Appends and syncs
-----------------
`write` encodes a batch as one frame and writes it to the active segment
under the log's lock. `sync` makes written frames durable with one
`fdatasync` per group: the first waiter that finds no sync running becomes
the leader, releases the lock and syncs everything written so far, while
later writers keep appending and wait for the next round. So N concurrent
appenders share far fewer than N fsyncs and are acknowledged together.

Readers only see acknowledged records: under `always` the durable end,
under `interval` and `never` the written end.

Failures
--------
A failed write is cut back to the frame boundary before it and raised;
earlier frames are unaffected. A failed fdatasync is never retried and
trusted: under `always`, everything after the last durable point is cut
off the active segment, every waiting append fails, and the log continues
from the durable end (nothing past it was acknowledged). Under `interval`
and `never`, records past that point were already acknowledged, so the log
is marked failed instead and refuses writes until reopened. If a cut
itself fails, the log is failed too. Reads keep working in every case.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from .errors import LogClosedError, LogFailedError, OffsetOutOfRangeError, StorageError, write_failed
from .fileio import FileIO
from .index import ENTRY
from .loader import RecoverMode, RecoveryReport, SegmentSettings, load_segments, segment_kwargs
from .record import Record, Run
from .segment import Segment

Durability = Literal["always", "interval", "never"]
DURABILITIES: tuple[Durability, ...] = ("always", "interval", "never")


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class LogConfig:
    """Limits and policies of one partition log."""

    segment_bytes_max: int = 128 * 1024 * 1024
    segment_age_ms_max: int = 7 * 24 * 3600 * 1000
    index_interval_bytes: int = 4096
    index_bytes_max: int = 512 * 1024
    frame_bytes_max: int = 64 * 1024 * 1024
    durability: Durability = "always"
    sync_interval_ms: int = 1000

    def __post_init__(self) -> None:
        if self.durability not in DURABILITIES:
            raise ValueError(f"durability must be one of {', '.join(DURABILITIES)}, not {self.durability!r}")
        if not 0 < self.segment_bytes_max <= 2**31:
            raise ValueError("segment_bytes_max must be in (0, 2 GiB]")
        if not 0 < self.frame_bytes_max <= self.segment_bytes_max:
            raise ValueError("frame_bytes_max must be in (0, segment_bytes_max]")
        if self.index_bytes_max < ENTRY.size:
            raise ValueError(f"index_bytes_max must be at least {ENTRY.size}")
        for name in ("segment_age_ms_max", "index_interval_bytes", "sync_interval_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


class Appended(NamedTuple):
    """Offsets [first_offset, end_offset) written by one append."""

    first_offset: int
    end_offset: int
    received_ms: int
    epoch: int


@dataclass(frozen=True)
class LogStatistics:
    start_offset: int
    end_offset: int
    written_end_offset: int
    durable_end_offset: int
    segment_count: int
    size_bytes: int
    syncs: int
    failed: bool


def _segment_settings(config: LogConfig, io: FileIO) -> SegmentSettings:
    return SegmentSettings(io, config.frame_bytes_max, config.index_interval_bytes, config.index_bytes_max // ENTRY.size,
                           config.segment_bytes_max)


LEAD_ROUNDS_MAX = 3
"""Consecutive fdatasyncs one group-commit leader runs before handing over."""


class _Waiter:
    """A thread in `sync` sleeping on its own lock until the sync that
    covers `end_offset` wakes it (`covered`: it returns without taking the
    log's lock again), or a failure or a hand-over of the lead does."""

    __slots__ = ("end_offset", "epoch", "covered", "_lock")

    def __init__(self, end_offset: int, epoch: int) -> None:
        self.end_offset = end_offset
        self.epoch = epoch
        self.covered = False
        self._lock = threading.Lock()
        self._lock.acquire()

    def wait(self) -> bool:
        self._lock.acquire()
        return self.covered

    def wake(self, *, covered: bool = False) -> None:
        self.covered = covered
        self._lock.release()


class PartitionLog:
    """The segments of one partition directory. Use `PartitionLog.open`."""

    def __init__(self, directory: str, config: LogConfig, segments: list[Segment], report: RecoveryReport,
                 *, io: FileIO, clock: Callable[[], int]) -> None:
        self.directory = directory
        self.config = config
        self.recovery = report
        self._io = io
        self._clock = clock
        self._settings = _segment_settings(config, io)
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        self._lock = threading.Lock()
        self._sync_done = threading.Condition(self._lock)
        active = segments[-1]
        self._durable = (active.end_offset, active.size, active.first_ms, active.last_ms)
        self._visible_end, self._visible_position = active.end_offset, active.size
        self._last_ms = max((s.last_ms for s in segments if s.last_ms is not None), default=0)
        self._syncing = False
        self._syncs = 0
        self._last_sync_ms = clock()
        self._epoch = 0
        self._rollbacks: dict[int, tuple[int, OSError]] = {}
        self._waiters: list[_Waiter] = []
        self._failed: LogFailedError | None = None
        self._closed = False

    @classmethod
    def open(cls, directory: str | os.PathLike[str], config: LogConfig | None = None, *, io: FileIO | None = None,
             clock: Callable[[], int] = wall_clock_ms, recover: RecoverMode = "refuse") -> PartitionLog:
        """Open (creating if needed) the log in `directory`, running recovery.

        Raises `CorruptLogError` for damage that is not a torn tail, unless
        `recover="truncate"`. What recovery did is in `log.recovery`.
        """
        directory = os.fspath(directory)
        config = config or LogConfig()
        io = io or FileIO()
        if not os.path.isdir(directory):
            os.makedirs(directory)
            io.fsync_dir(os.path.dirname(os.path.abspath(directory)))
        segments, report = load_segments(directory, _segment_settings(config, io), recover)
        if not report.segments_scanned:
            io.fsync_dir(directory)  # the first segment was just created
        return cls(directory, config, segments, report, io=io, clock=clock)

    # -- offsets ---------------------------------------------------------

    @property
    def start_offset(self) -> int:
        """The oldest offset still retained."""
        return self._segments[0].base_offset

    @property
    def end_offset(self) -> int:
        """The offset the next acknowledged record will get; readers see below it."""
        return self._visible_end

    def statistics(self) -> LogStatistics:
        with self._lock:
            return LogStatistics(
                start_offset=self._segments[0].base_offset, end_offset=self._visible_end,
                written_end_offset=self._segments[-1].end_offset, durable_end_offset=self._durable[0],
                segment_count=len(self._segments), size_bytes=sum(s.size for s in self._segments),
                syncs=self._syncs, failed=self._failed is not None)

    # -- appending -------------------------------------------------------

    def append(self, payloads: Sequence[bytes], received_ms: int | None = None) -> Appended:
        """Write a batch and return once the durability policy acknowledges it."""
        appended = self.write(payloads, received_ms)
        self._acknowledge(appended)
        return appended

    def append_batches(self, batches: Sequence[Sequence[bytes]]) -> list[Appended | StorageError]:
        """Write each batch as its own frame, then wait for the durability
        policy (one fdatasync under `always` covers them all). Each batch
        gets its `Appended`, or the `StorageError` that failed it: a failed
        write fails only its batch, a failed sync every batch it covered."""
        return self.acknowledge_batches([self._written(payloads) for payloads in batches])

    def _written(self, payloads: Sequence[bytes]) -> Appended | StorageError:
        try:
            return self.write(payloads)
        except StorageError as e:
            return e

    def acknowledge_batches(self, written: list[Appended | StorageError]) -> list[Appended | StorageError]:
        """The second half of `append_batches`: wait for the durability
        policy to acknowledge each of `written` (the results of `write` or
        `write_now`, in order); a failed sync replaces the batches it covered
        by its error."""
        results = list(written)
        # The last write first: its sync covers the others, whose checks
        # then cost no fdatasync (and fail if a failed sync cut them back).
        for i in reversed(range(len(results))):
            appended = results[i]
            if isinstance(appended, Appended):
                try:
                    self._acknowledge(appended)
                except StorageError as e:
                    results[i] = e
        return results

    def _acknowledge(self, appended: Appended) -> None:
        """Return once the durability policy acknowledges `appended` (and
        everything written before it)."""
        policy = self.config.durability
        if policy == "always":
            self.sync(appended)
        elif policy == "interval" and self._clock() - self._last_sync_ms >= self.config.sync_interval_ms:
            # The records were acknowledged when written; a failed sync
            # marks the log failed for later writes but cannot retract them.
            with contextlib.suppress(LogFailedError):
                self.sync(appended)

    def write(self, payloads: Sequence[bytes], received_ms: int | None = None) -> Appended:
        """Write a batch as one frame, without waiting for fsync.

        Under `always` the records are not visible to readers and not
        acknowledged until a `sync` covering them returns.
        """
        if not payloads:
            raise ValueError("an append needs at least one record")
        with self._lock:
            self._check_writable()
            now = self._clock()
            self._maybe_roll(now, sum(len(p) for p in payloads))
            return self._write_locked(payloads, now, received_ms)

    def write_now(self, payloads: Sequence[bytes]) -> Appended | None:
        """`write`, if that costs no more than the write itself: None, and
        nothing written, when another thread holds the log or a segment is
        due to roll (which syncs and creates files). For an event loop,
        which must not wait on a sync."""
        if not payloads:
            raise ValueError("an append needs at least one record")
        if not self._lock.acquire(blocking=False):
            return None
        try:
            self._check_writable()
            now = self._clock()
            if self._roll_due(now, sum(len(p) for p in payloads)):
                return None
            return self._write_locked(payloads, now, None)
        finally:
            self._lock.release()

    def _write_locked(self, payloads: Sequence[bytes], now: int, received_ms: int | None) -> Appended:
        active = self._segments[-1]
        first = active.end_offset
        received = max(now if received_ms is None else received_ms, self._last_ms)
        try:
            active.write(received, payloads)
        except OSError as e:
            self._fail("cutting back a failed append failed", e)
        self._last_ms = received
        self._io.crash_point("log.written")
        if self.config.durability != "always":
            self._visible_end, self._visible_position = active.end_offset, active.size
        return Appended(first, active.end_offset, received, self._epoch)

    def sync(self, appended: Appended | None = None) -> None:
        """Block until `appended` (default: everything written) is durable.

        Group commit: one fdatasync covers every write made before it began.
        A waiter woken because it is covered returns without taking the
        log's lock again.
        """
        with self._lock:
            if appended is None:
                appended = Appended(self._segments[-1].base_offset, self._segments[-1].end_offset, 0, self._epoch)
            waiter = self._lead_or_enqueue(appended)
        while waiter is not None and not waiter.wait():
            with self._lock:
                waiter = self._lead_or_enqueue(appended)

    def _lead_or_enqueue(self, appended: Appended) -> _Waiter | None:
        """Lead syncs until `appended` is durable (None), or, while another
        thread leads, queue a waiter to sleep on once the lock is released."""
        while not self._is_durable(appended):
            self._check_writable()
            if self._syncing:
                waiter = _Waiter(appended.end_offset, self._epoch)
                self._waiters.append(waiter)
                return waiter
            self._lead_sync()
        return None

    def _is_durable(self, appended: Appended) -> bool:
        if appended.epoch == self._epoch:
            return self._durable[0] >= appended.end_offset
        durable_end, error = self._rollbacks[appended.epoch]
        if appended.end_offset <= durable_end:
            return True
        raise write_failed("the append was cut back after a failed fdatasync", error) from error

    def _wake_waiters(self, *, hand_off: bool = True) -> None:
        """Wake the waiters the durable end now covers, and (with `hand_off`)
        one more to lead the next sync; after a failure, wake them all."""
        durable_end, epoch = self._durable[0], self._epoch
        everyone = self._failed is not None or self._closed
        remaining = []
        for waiter in self._waiters:
            if not everyone and waiter.end_offset <= durable_end and waiter.epoch == epoch:
                waiter.wake(covered=True)
            elif everyone or waiter.epoch != epoch:
                waiter.wake()
            else:
                remaining.append(waiter)
        if remaining and hand_off:
            remaining.pop(0).wake()
        self._waiters = remaining

    def _lead_sync(self) -> None:
        """Sync the active segment up to its written end, and again while
        others wait, up to LEAD_ROUNDS_MAX rounds, so the disk is not left
        idle while a new leader wakes up. Lock held on entry and exit."""
        for rounds_left in range(LEAD_ROUNDS_MAX - 1, -1, -1):
            active = self._segments[-1]
            target = (active.end_offset, active.size, active.first_ms, active.last_ms)
            self._syncing = True
            self._lock.release()
            try:
                self._io.fdatasync(active.fd)
                error = None
            except OSError as e:
                error = e
            finally:
                self._lock.acquire()
                self._syncs += 1
                self._last_sync_ms = self._clock()
            if error is not None:
                self._syncing = False
                self._sync_done.notify_all()
                self._sync_failed(active, error)
            self._io.crash_point("log.synced")
            self._made_durable(target, hand_off=False)
            if not rounds_left or not self._waiters:
                break
        self._syncing = False
        self._sync_done.notify_all()
        self._wake_waiters()

    def _made_durable(self, target: tuple[int, int, int | None, int | None], *, hand_off: bool = True) -> None:
        self._durable = target
        self._io.crash_point("log.durable")
        if self.config.durability == "always":
            self._visible_end, self._visible_position = target[0], target[1]
        self._wake_waiters(hand_off=hand_off)

    def _sync_failed(self, active: Segment, error: OSError) -> None:
        if self.config.durability != "always":
            self._fail("fdatasync failed after records were acknowledged", error)
        try:
            active.cut_back(*self._durable)
        except OSError as e:
            self._fail("cutting back after a failed fdatasync failed", e)
        self._rollbacks[self._epoch] = (self._durable[0], error)
        self._epoch += 1
        self._wake_waiters()
        raise write_failed(f"fdatasync of {active.log_path} failed", error) from error

    def _fail(self, message: str, error: OSError) -> None:
        self._failed = LogFailedError(f"{self.directory}: {message}: {error}; reopen the log to recover")
        self._wake_waiters()
        raise self._failed from error

    def _check_writable(self) -> None:
        if self._closed:
            raise LogClosedError(f"{self.directory} is closed")
        if self._failed is not None:
            raise self._failed

    # -- rolling ---------------------------------------------------------

    def roll(self) -> None:
        """Seal the active segment (if it holds records) and start a new one."""
        with self._lock:
            self._check_writable()
            if not self._segments[-1].empty:
                self._roll()

    def _maybe_roll(self, now: int, batch_bytes: int) -> None:
        if self._roll_due(now, batch_bytes):
            self._roll()

    def _roll_due(self, now: int, batch_bytes: int) -> bool:
        active = self._segments[-1]
        return not active.empty and (
            active.size + batch_bytes > self.config.segment_bytes_max or active.index_full()
            or now - (active.first_ms or now) >= self.config.segment_age_ms_max)

    def _roll(self) -> None:
        while self._syncing:
            self._sync_done.wait()
        active = self._segments[-1]
        if self._durable[0] < active.end_offset:
            try:
                self._io.fdatasync(active.fd)
            except OSError as e:
                self._syncs += 1
                self._sync_failed(active, e)
            self._syncs += 1
            self._made_durable((active.end_offset, active.size, active.first_ms, active.last_ms))
        self._io.crash_point("log.roll.synced")
        active.seal()
        segment = Segment.create(self.directory, active.end_offset, **segment_kwargs(self._settings))
        self._io.crash_point("log.roll.created")
        try:
            self._io.fsync_dir(self.directory)
        except OSError as e:
            with contextlib.suppress(OSError):
                segment.retire(delete=True)
            raise write_failed(f"fsync of {self.directory} after creating a segment failed", e) from e
        self._segments.append(segment)
        self._bases.append(segment.base_offset)
        self._durable = (segment.end_offset, segment.size, None, None)
        self._visible_end, self._visible_position = segment.end_offset, segment.size

    # -- reading ---------------------------------------------------------

    def read(self, offset: int, max_records: int = 1000, max_bytes: int = 1024 * 1024) -> list[Record]:
        """Acknowledged records from `offset` on, at most `max_records`, and
        stopping before `max_bytes` of payload unless that leaves none."""
        return [record for run in self.read_runs(offset, max_records, max_bytes) for record in run.records()]

    def read_runs(self, offset: int, max_records: int = 1000, max_bytes: int = 1024 * 1024, *,
                  cached_only: bool = False) -> list[Run]:
        """What `read` returns, as runs of consecutive payloads (one per
        stored frame): the cheap form for streaming, no object per record.

        `cached_only` is for an event loop, which must not wait: it raises
        `BlockingIOError` instead of waiting for the disk or for another
        thread holding the log."""
        if max_records < 1 or max_bytes < 1:
            raise ValueError("max_records and max_bytes must be positive")
        runs: list[Run] = []
        count = total = 0
        while count < max_records and total < max_bytes:
            if not self._lock.acquire(blocking=not cached_only):
                raise BlockingIOError(errno.EAGAIN, "another thread holds the log")
            try:
                if self._closed:
                    raise LogClosedError(f"{self.directory} is closed")
                start, end = self._segments[0].base_offset, self._visible_end
                if not start <= offset <= end:
                    if runs:
                        break
                    raise OffsetOutOfRangeError(offset, start, end)
                if offset == end:
                    break
                segment = self._segments[bisect.bisect_right(self._bases, offset) - 1]
                end_position = self._visible_position if segment is self._segments[-1] else segment.size
                segment.pin()
            finally:
                self._lock.release()
            try:
                chunk = segment.read(offset, max_records - count, max(max_bytes - total, 1), end_position,
                                     cached_only=cached_only)
            finally:
                with self._lock:
                    segment.unpin()
            if not chunk or (runs and total + len(chunk[0].payloads[0]) > max_bytes):
                break
            runs.extend(chunk)
            count += sum(len(run.payloads) for run in chunk)
            total += sum(sum(map(len, run.payloads)) for run in chunk)
            offset = chunk[-1].end_offset
        return runs

    def offset_at_or_after(self, ms: int) -> int:
        """The first retained offset received at or after `ms` (the end offset if none)."""
        with self._lock:
            candidates = [s for s in self._segments if s.last_ms is not None and s.last_ms >= ms]
            end = self._visible_end
            for segment in candidates:
                segment.pin()
            active = self._segments[-1]
            bounds = {id(s): self._visible_position if s is active else s.size for s in candidates}
        try:
            for segment in candidates:
                found = segment.offset_at_or_after(ms, bounds[id(segment)])
                if found is not None:
                    return min(max(found, self.start_offset), end)
            return end
        finally:
            with self._lock:
                for segment in candidates:
                    segment.unpin()

    # -- retention -------------------------------------------------------

    def enforce_retention(self, retention_ms: int | None = None, retention_bytes: int | None = None) -> int:
        """Delete whole oldest segments older than `retention_ms` (by their
        newest record) or beyond `retention_bytes` in total. The active
        segment is rolled first when all of it has expired. Returns the
        number of segments deleted; the start offset moves past them."""
        with self._lock:
            self._check_writable()
            now = self._clock()
            active = self._segments[-1]
            if retention_ms is not None and not active.empty and active.last_ms is not None and active.last_ms < now - retention_ms:
                self._roll()
            total = sum(s.size for s in self._segments)
            doomed: list[Segment] = []
            for segment in self._segments[:-1]:
                expired = retention_ms is not None and segment.last_ms is not None and segment.last_ms < now - retention_ms
                too_big = retention_bytes is not None and total > retention_bytes
                if not (expired or too_big or segment.empty):
                    break
                doomed.append(segment)
                total -= segment.size
            if not doomed:
                return 0
            del self._segments[: len(doomed)]
            del self._bases[: len(doomed)]
            for segment in doomed:
                segment.retire(delete=True)
            self._io.fsync_dir(self.directory)
            return len(doomed)

    # -- closing ---------------------------------------------------------

    def close(self) -> None:
        """Sync what was written and release every file. Idempotent."""
        with self._lock:
            if self._closed:
                return
            while self._syncing:
                self._sync_done.wait()
            active = self._segments[-1]
            try:
                if self._failed is None and self._durable[0] < active.end_offset:
                    self._io.fdatasync(active.fd)
            except OSError as e:
                raise write_failed(f"fdatasync of {active.log_path} at close failed", e) from e
            finally:
                self._closed = True
                for segment in self._segments:
                    segment.retire(delete=False)
                self._wake_waiters()

    def delete(self) -> None:
        """Close the log and remove its directory whole."""
        self.close()
        shutil.rmtree(self.directory)
        self._io.fsync_dir(os.path.dirname(os.path.abspath(self.directory)))
