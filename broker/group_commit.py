"""Group commit across the requests of the event loop: the appends that
arrive while a round is under way are written by the next round together,
with one fdatasync per partition log.

A round writes its frames in the event loop itself, as far as a write
costs only the write (`PartitionLog.write_now`: not while another thread
holds the log, nor when a segment must roll), and hands the rest and the
sync of each log to a worker thread of its own. Each system call a worker
thread makes gives the GIL back, and taking it again from a busy event
loop waits up to the switch interval: writing in the worker cost a round
one such wait per frame, syncing its logs one after the other one wait
per log. With the writes in the loop and the syncs side by side, a round
over 4 partitions waits about once (measured with bench/publish_bench.py,
alternating: +10% events/s for 1000-event batches over 4 partitions from
the writes, +7 to 15% for batches of 1 to 1000 from the parallel syncs).
A round first lets the event loop run a few passes, so publishes already
under way join it.

An append, once queued, is not cancellable: its write may already be on
disk, and its caller must learn the outcome (cancellation waits for the
round, as it waits for any worker thread).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import trio

from storage import Appended, PartitionLog, StorageError

if TYPE_CHECKING:
    import outcome

# Event loop passes a round waits for appends to join it. Measured with
# bench/publish_bench.py's load (8 connections): 1 pass gives 0.33 fsyncs
# per publish, 8 passes 0.13 and 10-30% more events/s for batches of 1 and
# 100; a lone publish waits about 50 us longer.
JOIN_PASSES = 8

Outcome = Appended | Exception
T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class _Pending:
    """One caller's appends, one frame each, and their outcomes once written."""


    appends: Sequence[tuple[PartitionLog, Sequence[bytes]]]
    wake: trio.Event = field(default_factory=trio.Event)
    outcomes: list[Outcome] | None = None


class GroupCommit:
    """Appends to partition logs, coalesced into rounds."""

    def __init__(self) -> None:
        self._queue: list[_Pending] = []
        self._round_running = False

    async def append(self, appends: Sequence[tuple[PartitionLog, Sequence[bytes]]]) -> list[Outcome]:
        """Append each `(log, payloads)` as one frame (in order, for appends
        to the same log); return once the logs' durability policy
        acknowledges them. Each gets its `Appended`, or the exception that
        failed it (what `PartitionLog.append_batches` gives)."""
        pending = _Pending(appends)
        self._queue.append(pending)
        with trio.CancelScope(shield=True):
            while pending.outcomes is None:
                if self._round_running:
                    # Woken with the outcomes, or to lead the next round.
                    await pending.wake.wait()
                    pending.wake = trio.Event()
                else:
                    await self._round()
        return pending.outcomes

    async def _round(self) -> None:
        self._round_running = True
        try:
            for _ in range(JOIN_PASSES):
                await trio.lowlevel.checkpoint()
            batch, self._queue = self._queue, []
            round_ = _Round([pending.appends for pending in batch])
            round_.write_now()
            await round_.finish_in_threads()
            for pending, its_outcomes in zip(batch, round_.outcomes, strict=True):
                pending.outcomes = its_outcomes  # type: ignore[assignment]
                pending.wake.set()
        finally:
            self._round_running = False
            if self._queue:
                self._queue[0].wake.set()


async def _in_worker_thread(function: Callable[[T], R], argument: T) -> R:
    """`function(argument)` in one of trio's cached worker threads, without
    `trio.to_thread`'s capacity limiter, context copy and thread renaming
    (a system call per call, 2% of a publish's CPU). Not cancellable."""
    token = trio.lowlevel.current_trio_token()
    task = trio.lowlevel.current_task()

    def deliver(result: outcome.Outcome[R]) -> None:
        token.run_sync_soon(trio.lowlevel.reschedule, task, result)
    trio.lowlevel.start_thread_soon(partial(function, argument), deliver)
    return await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)


class _Round:
    """The appends of one round, grouped by log: written in the event loop
    where that costs only the write; the rest written, and each log synced,
    in worker threads."""

    def __init__(self, batch: list[Sequence[tuple[PartitionLog, Sequence[bytes]]]]) -> None:
        self._batch = batch
        self._slots: dict[PartitionLog, list[tuple[int, int]]] = {}
        for caller, appends in enumerate(batch):
            for i, (log, _) in enumerate(appends):
                self._slots.setdefault(log, []).append((caller, i))
        self._written: dict[PartitionLog, list[Appended | StorageError]] = {log: [] for log in self._slots}
        self._failed: dict[PartitionLog, Exception] = {}
        self.outcomes: list[list[Outcome | None]] = [[None] * len(appends) for appends in batch]

    def _payloads(self, log: PartitionLog) -> list[Sequence[bytes]]:
        return [self._batch[caller][i][1] for caller, i in self._slots[log]]

    def write_now(self) -> None:
        """In the event loop: each log's frames, in order, up to the first
        that `PartitionLog.write_now` leaves to a worker thread."""
        for log, written in self._written.items():
            try:
                for payloads in self._payloads(log):
                    appended = _outcome(log.write_now, payloads)
                    if appended is None:
                        break
                    written.append(appended)
            except Exception as e:
                self._failed[log] = e

    async def finish_in_threads(self) -> None:
        """`finish` each log, in a worker thread of its own: their fdatasyncs
        queue at the disk at once, without a wait for the GIL between them."""
        logs = list(self._slots)
        if len(logs) == 1:  # without a nursery's task
            await _in_worker_thread(self.finish, logs[0])
            return
        async with trio.open_nursery() as nursery:
            for log in logs:
                nursery.start_soon(_in_worker_thread, self.finish, log)

    def finish(self, log: PartitionLog) -> None:
        """In a worker thread: the frames of `log` left, then its sync; the
        outcomes of their appends in `outcomes`."""
        slots = self._slots[log]
        written = self._written[log]
        failure = self._failed.get(log)
        done: Sequence[Outcome]
        if failure is None:
            try:
                written += [_outcome(log.write, payloads) for payloads in self._payloads(log)[len(written):]]
                done = log.acknowledge_batches(written)
            except Exception as e:
                done = [e] * len(slots)
        else:
            done = [failure] * len(slots)
        for (caller, i), outcome in zip(slots, done, strict=True):
            self.outcomes[caller][i] = outcome


def _outcome(write: Callable[[Sequence[bytes]], R], payloads: Sequence[bytes]) -> R | StorageError:
    """What `write(payloads)` returns, or the `StorageError` that failed it (that batch alone)."""
    try:
        return write(payloads)
    except StorageError as e:
        return e
