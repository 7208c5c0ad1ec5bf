"""Group commit across the requests of the event loop: the appends that
arrive while a round is under way are written by the next round together,
all partition logs in one worker thread call, with one fdatasync per log.

Without it each request hands each of its appends to a thread of its own,
and an fdatasync covers about two requests; each thread call and fdatasync
costs CPU time the event loop needs (on a VM disk, as much as the rest of a
small publish). One call for every log of a round, rather than one per log,
saves the thread hand-offs of a publish that spans partitions; this disk
serialises fdatasyncs anyway (four files synced from four threads take
0.8 ms, from one thread 0.9 ms). A round first lets the event loop run a
few passes, so publishes already under way join it.

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

from storage import Appended, PartitionLog

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
            outcomes = await _in_worker_thread(_write, [pending.appends for pending in batch])
            for pending, its_outcomes in zip(batch, outcomes, strict=True):
                pending.outcomes = its_outcomes
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


def _write(batch: list[Sequence[tuple[PartitionLog, Sequence[bytes]]]]) -> list[list[Outcome]]:
    """In a worker thread: each log's frames of the round, then its sync;
    the outcomes of each caller's appends."""
    outcomes: list[list[Outcome | None]] = [[None] * len(appends) for appends in batch]
    by_log: dict[PartitionLog, list[tuple[int, int]]] = {}
    for caller, appends in enumerate(batch):
        for i, (log, _) in enumerate(appends):
            by_log.setdefault(log, []).append((caller, i))
    for log, slots in by_log.items():
        try:
            written: Sequence[Outcome] = log.append_batches([batch[caller][i][1] for caller, i in slots])
        except Exception as e:
            written = [e] * len(slots)
        for (caller, i), outcome in zip(slots, written, strict=True):
            outcomes[caller][i] = outcome
    return outcomes  # type: ignore[return-value]
