"""Group commit across the requests of the event loop: the appends to one
partition log that arrive while a round is under way are written by the
next round together, in one worker thread call with one fdatasync.

Without it each request hands its append to a thread of its own, and an
fdatasync covers about two requests; each fdatasync costs CPU time the
event loop needs (on a VM disk, as much as the rest of a small publish).
A round first lets the event loop run a few passes, so publishes already
under way join it.

An append, once queued, is not cancellable: its write may already be on
disk, and its caller must learn the outcome (cancellation waits for the
round, as it waits for any worker thread).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from storage import Appended, PartitionLog

# Event loop passes a round waits for appends to join it. Measured with
# bench/publish_bench.py's load (8 connections): 1 pass gives 0.33 fsyncs
# per publish, 8 passes 0.13 and 10-30% more events/s for batches of 1 and
# 100; a lone publish waits about 50 us longer.
JOIN_PASSES = 8


@dataclass(eq=False)
class _Pending:
    payloads: Sequence[bytes]
    wake: trio.Event = field(default_factory=trio.Event)
    outcome: Appended | Exception | None = None


class GroupCommit:
    """Appends to one partition log, coalesced into rounds."""

    def __init__(self, log: PartitionLog) -> None:
        self._log = log
        self._queue: list[_Pending] = []
        self._round_running = False

    async def append(self, payloads: Sequence[bytes]) -> Appended:
        """Append `payloads` as one frame; return once the log's durability
        policy acknowledges it. Raises what `PartitionLog.append` raises."""
        pending = _Pending(payloads)
        self._queue.append(pending)
        with trio.CancelScope(shield=True):
            while pending.outcome is None:
                if self._round_running:
                    # Woken with an outcome, or to lead the next round.
                    await pending.wake.wait()
                    pending.wake = trio.Event()
                else:
                    await self._round()
        if isinstance(pending.outcome, Exception):
            raise pending.outcome
        return pending.outcome

    async def _round(self) -> None:
        self._round_running = True
        try:
            for _ in range(JOIN_PASSES):
                await trio.lowlevel.checkpoint()
            batch, self._queue = self._queue, []
            try:
                outcomes: list[Appended | Exception] = list(await trio.to_thread.run_sync(
                    self._log.append_batches, [p.payloads for p in batch]))
            except Exception as e:
                outcomes = [e] * len(batch)
            for pending, outcome in zip(batch, outcomes, strict=True):
                pending.outcome = outcome
                pending.wake.set()
        finally:
            self._round_running = False
            if self._queue:
                self._queue[0].wake.set()
