"""One subscription stream: the trio shell that reads the partitions its
session is assigned, cuts batches and ends the stream, as Nakadi's
StreamingState.

Per partition it keeps the events read and not yet sent with their
offsets, the last offset read, its flush timer and its count of
consecutive keep-alives. Each pass of the loop follows the assignment (new
partitions start after the committed cursor, or after what this stream
already sent), reads what the budget allows (with the subscription's
filter, whole chunks, keeping the matching events), and sends:

- the budget is `max_uncommitted_events` minus the events sent and not
  committed, and no more than `stream_limit` minus the events sent; at
  zero the stream pauses (reads nothing, sends only keep-alives);
- a partition sends a batch when it holds a full batch, or when its flush
  timer ran out (a keep-alive if it holds nothing); a batch's cursor
  covers the events filtered out up to the next one it holds, and a
  keep-alive's all that was read;
- the stream ends with a debug batch on its first partition at a reset
  ("Resetting subscription cursors"), at `commit_timeout` without a commit
  while events are outstanding ("Commit timeout reached"), at
  `stream_timeout` after flushing ("Stream timeout reached"), once
  `stream_limit` events are committed ("Stream limit in events reached");
  without one when every partition sent `stream_keep_alive_limit`
  keep-alives in a row, after two commit timeouts without any partition,
  or at shutdown.

The first line of a stream carries "Stream started". Reading stops while
the bytes held exceed a bound, so a slow client never makes the server
buffer without limit: the generator is suspended while the socket is busy.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import trio

from .batching import BUFFERED_BYTES_MAX_DEFAULT
from .cursors import format_offset
from .observer import Observer, Stream, StreamEnd
from .partition_logs import PartitionLogs
from .rebalance import PartitionKey
from .subscription_coordinator import Coordinator, Session

READ_RECORDS_MAX = 1000
READ_BYTES_MAX = 1024 * 1024
# With batch_flush_timeout 0 partial batches go out at once; keep-alives
# still wait this long, so an idle stream does not spin.
KEEP_ALIVE_S_MIN = 1.0


@dataclass(eq=False)
class _Partition:
    key: PartitionKey
    scanned_to: int  # the last offset read (sent, pending or filtered out)
    flushed_at: float
    pending: list[bytes] = field(default_factory=list)  # read, to send
    offsets: list[int] = field(default_factory=list)  # of the pending events
    pending_bytes: int = 0
    keep_alives: int = 0

    def cursor_after(self, count: int) -> int:
        """The cursor of a batch of the first `count` pending events: up to
        the next pending one, so it covers the events filtered out between."""
        return self.offsets[count] - 1 if count < len(self.offsets) else self.scanned_to


async def subscription_stream(coordinator: Coordinator, session: Session, logs: PartitionLogs,
                              indexes: dict[PartitionKey, int], stream: Stream | None = None
                              ) -> AsyncIterator[bytes]:
    """The lines of `session`'s stream until an end rule holds; the session
    is ended (closing) when the generator finishes, however it finishes.
    `stream` learns the events sent and why the stream ended."""
    session.streaming = True
    shell = _Shell(coordinator, session, logs, indexes, stream or Stream("subscription", "", "", "", Observer()))
    try:
        async for chunk in shell.run():
            yield chunk
    finally:
        coordinator.end_session(session, trio.current_time())


class _Shell:
    def __init__(self, coordinator: Coordinator, session: Session, logs: PartitionLogs,
                 indexes: dict[PartitionKey, int], stream: Stream) -> None:
        self.stream = stream
        self.coordinator = coordinator
        self.session = session
        self.params = session.params
        self.logs = logs
        self.indexes = indexes
        self.parts: dict[PartitionKey, _Partition] = {}
        self.lines_sent = 0
        self.idle_since: float | None = session.started_at

    async def run(self) -> AsyncIterator[bytes]:
        params, session, coordinator = self.params, self.session, self.coordinator
        stream_deadline = session.started_at + params.stream_timeout_s
        while True:
            now = trio.current_time()
            coordinator.expire(now)
            if session.close_message is not None:
                self.stream.end = StreamEnd.CLOSED
                line = self._debug(session.close_message)
                if line:
                    yield line
                return
            if self.logs.streams_ended or session.ended:
                self.stream.end = StreamEnd.SHUTDOWN if self.logs.streams_ended else StreamEnd.CLOSED
                return
            wake = session.wake
            self._follow_assignment(now)
            appended = [self.logs.appended(key.event_type) for key in self.parts]
            read = await self._read()
            now = trio.current_time()
            timed_out = stream_deadline <= now
            lines = self._batches(now, flush_all=timed_out)
            ending = self._ending(now, timed_out)
            if ending is not None:
                lines.append(self._debug(ending[0]))
            if lines:
                yield b"".join(lines)
            end = ending[1] if ending is not None else self._quiet_end(now)
            if end is not None:
                self.stream.end = end
                return
            if not read or not self._budget():
                await _wait_any([wake, *appended], self._next_wakeup(now))

    # -- assignment --------------------------------------------------------

    def _follow_assignment(self, now: float) -> None:
        reading = self.coordinator.reading(self.session)
        for key in [k for k in self.parts if k not in reading]:
            del self.parts[key]
        for part in self.parts.values():
            committed = self.coordinator.committed[part.key]
            if part.offsets and part.offsets[0] <= committed or committed > part.scanned_to:
                # The client committed beyond what was sent: skip ahead.
                kept = bisect.bisect_right(part.offsets, committed)
                part.pending_bytes -= sum(map(len, part.pending[:kept]))
                del part.pending[:kept], part.offsets[:kept]
                part.scanned_to = max(part.scanned_to, committed)
        for key in reading:
            if key not in self.parts:
                self.parts[key] = _Partition(key, self.coordinator.position(self.session, key), now)
        if self.parts:
            self.idle_since = None
        elif self.idle_since is None:
            self.idle_since = now

    # -- reading -----------------------------------------------------------

    def _budget(self) -> int:
        """Events that may still be sent: the uncommitted and stream limits."""
        params, session = self.params, self.session
        budget = params.max_uncommitted_events - self.coordinator.uncommitted(session)
        if params.stream_limit:
            budget = min(budget, params.stream_limit - session.events_sent)
        return max(0, budget)

    async def _read(self) -> int:
        wanted = self._budget() - sum(len(p.pending) for p in self.parts.values())
        total = 0
        for part in sorted(self.parts.values(), key=lambda p: p.key):
            if wanted - total <= 0 or self._held_bytes() >= BUFFERED_BYTES_MAX_DEFAULT:
                break
            name, index = part.key.event_type, self.indexes[part.key]
            if not self.logs.has(name):
                continue
            start, end = self.logs.bounds(name, index)
            if part.scanned_to < start - 1:
                part.scanned_to = start - 1  # retention deleted what this stream had not read
            if part.scanned_to + 1 >= end:
                continue
            # Unfiltered, a record is an event; filtered, the budget says
            # nothing of how many records its events take, so read a full
            # chunk (what is held stays bounded by the bytes check above).
            limit = READ_RECORDS_MAX if self.coordinator.filter else min(READ_RECORDS_MAX, wanted - total)
            for run in await self.logs.read_runs(name, index, part.scanned_to + 1, limit, READ_BYTES_MAX):
                if self.parts.get(part.key) is not part:
                    break  # the partition moved away while we read
                assert run.first_offset == part.scanned_to + 1, (run.first_offset, part.scanned_to)
                total += self._take(part, run.first_offset, run.payloads)
        return total

    def _take(self, part: _Partition, first_offset: int, payloads: list[bytes]) -> int:
        """Keep what the subscription's filter lets through; the events read."""
        matches = self.coordinator.filter
        if matches is None:
            part.pending.extend(payloads)
            part.offsets.extend(range(first_offset, first_offset + len(payloads)))
            part.pending_bytes += sum(map(len, payloads))
        else:
            for offset, payload in enumerate(payloads, first_offset):
                if matches.matches_json(payload):
                    part.pending.append(payload)
                    part.offsets.append(offset)
                    part.pending_bytes += len(payload)
        part.scanned_to = first_offset + len(payloads) - 1
        return len(payloads)

    def _held_bytes(self) -> int:
        return sum(p.pending_bytes for p in self.parts.values())

    # -- sending -----------------------------------------------------------

    def _batches(self, now: float, *, flush_all: bool) -> list[bytes]:
        lines: list[bytes] = []
        budget = self._budget()
        flush_s = self.params.batch_flush_timeout_s
        for part in sorted(self.parts.values(), key=lambda p: p.key):
            while True:
                size = min(self.params.batch_limit, budget)
                sendable = bool(size and part.pending)
                full = sendable and len(part.pending) >= size
                due = part.flushed_at + _flush_after(flush_s, sendable) <= now
                if not (full or due or (flush_all and sendable)):
                    break
                events = part.pending[:size]
                lines.append(self._send(part, events, now))
                if not events:
                    break
                budget -= len(events)
        return lines

    def _send(self, part: _Partition, events: list[bytes], now: float) -> bytes:
        session, coordinator = self.session, self.coordinator
        part.flushed_at = now
        cursor = part.cursor_after(len(events))
        if events:
            del part.pending[:len(events)], part.offsets[:len(events)]
            part.pending_bytes -= sum(map(len, events))
            part.keep_alives = 0
        else:
            part.keep_alives += 1
        self.stream.sent(part.key.event_type, len(events))
        if events or cursor > coordinator.position(session, part.key):
            # A keep-alive moves the cursor past events filtered out.
            coordinator.record_sent(session, part.key, cursor, len(events), now)
        return self._line(part.key, events, None)

    def _debug(self, message: str) -> bytes:
        keys = sorted(self.parts) or self.coordinator.holding(self.session)
        return self._line(keys[0], [], message) if keys else b""

    def _line(self, key: PartitionKey, events: Sequence[bytes], debug: str | None) -> bytes:
        if self.lines_sent == 0:
            debug = "Stream started" if debug is None else f"Stream started; {debug}"
        self.lines_sent += 1
        offset = self.coordinator.position(self.session, key)
        return subscription_line(key, offset, str(uuid.uuid4()), events, debug)

    # -- ending ------------------------------------------------------------

    def _ending(self, now: float, timed_out: bool) -> tuple[str, StreamEnd] | None:
        """The debug message of an end rule that holds, and the end it is."""
        params, session = self.params, self.session
        if params.stream_limit and session.events_committed >= params.stream_limit:
            return f"Stream limit in events reached: {params.stream_limit}", StreamEnd.STREAM_LIMIT
        if self.coordinator.uncommitted(session) and session.last_commit_at + params.commit_timeout_s <= now:
            return "Commit timeout reached", StreamEnd.COMMIT_TIMEOUT
        if timed_out:
            return "Stream timeout reached", StreamEnd.STREAM_TIMEOUT
        return None

    def _quiet_end(self, now: float) -> StreamEnd | None:
        """Why the stream ends without a debug batch after this pass, if it does."""
        if self._keep_alive_limit_reached():
            return StreamEnd.KEEP_ALIVE_LIMIT
        return StreamEnd.IDLE if self._idle_too_long(now) else None

    def _keep_alive_limit_reached(self) -> bool:
        limit = self.params.stream_keep_alive_limit
        return bool(limit and self.parts and all(p.keep_alives >= limit for p in self.parts.values()))

    def _idle_too_long(self, now: float) -> bool:
        return self.idle_since is not None and self.idle_since + 2 * self.params.commit_timeout_s <= now

    def _next_wakeup(self, now: float) -> float:
        params, session = self.params, self.session
        times = [session.started_at + params.stream_timeout_s]
        budget = self._budget()
        for part in self.parts.values():
            times.append(part.flushed_at + _flush_after(params.batch_flush_timeout_s, bool(budget and part.pending)))
        if self.coordinator.uncommitted(session):
            times.append(session.last_commit_at + params.commit_timeout_s)
        if self.idle_since is not None:
            times.append(self.idle_since + 2 * params.commit_timeout_s)
        expiry = self.coordinator.next_expiry()
        if expiry is not None:
            times.append(expiry)
        return max(0.0, min(times) - now)


def _flush_after(flush_s: float, sendable: bool) -> float:
    """How long after its last batch a partition sends again: what it holds
    after the flush timeout, a keep-alive no sooner than every second."""
    return flush_s if sendable else max(flush_s, KEEP_ALIVE_S_MIN)


async def _wait_any(events: list[trio.Event], timeout_s: float) -> None:
    """Until one of `events` is set or `timeout_s` passes."""
    with trio.move_on_after(timeout_s):
        async with trio.open_nursery() as nursery:
            async def wait(event: trio.Event) -> None:
                await event.wait()
                nursery.cancel_scope.cancel()
            for event in events:
                nursery.start_soon(wait, event)


def subscription_line(key: PartitionKey, offset: int, cursor_token: str, events: Sequence[bytes],
                      debug: str | None) -> bytes:
    """One batch line in Nakadi's subscription layout (`events` omitted when
    empty, `info` only with a debug text, which is written raw as Nakadi does)."""
    head = (f'{{"cursor":{{"partition":"{key.partition}","offset":"{format_offset(offset)}",'
            f'"event_type":"{key.event_type}","cursor_token":"{cursor_token}"}}').encode()
    parts = [head]
    if events:
        parts += [b',"events":[', b",".join(events), b"]"]
    if debug is not None:
        parts.append(f',"info":{{"debug":"{debug}"}}'.encode())
    parts.append(b"}\n")
    return b"".join(parts)
