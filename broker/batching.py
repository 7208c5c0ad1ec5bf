"""The stream batcher: which events go out in which batch, when, and when a
stream ends; and the bytes of a batch line. No clock, no trio, no I/O.

Theory of operation
-------------------

The shell owns a `Batcher` per stream. It reads events from storage and
`add`s them (per partition in offset order), calls `tick(now)` with the
monotonic time, writes the returned batches (all of them in one send, see
`batch_lines`), and sleeps for `next_wakeup(now)` seconds or until storage
has more, whichever comes first. It reads only while `wants_more()`.

Each partition holds its pending events, its cursor (the offset of the last
event read, at first the start cursor, which is exclusive), the time its
last batch went out (its flush timer), and its count of consecutive
keep-alives. Following Nakadi's `EventStream.streamEvents` loop:

- `add` appends the event and resets the partition's keep-alive count. When
  the partition then holds `batch_limit` events, they are cut into a ready
  batch. When the pending bytes of all partitions exceed
  `buffered_bytes_max`, the heaviest partition is cut early (Nakadi's
  maxStreamMemoryBytes), so pending bytes never stay above the bound.
- `tick(now)` hands out the ready batches and restarts their partitions'
  flush timers at `now` (the moment they are sent); then every partition
  whose timer has run `batch_flush_timeout_s` is cut, pending events or
  none: an empty batch is a keep-alive and counts one more consecutive
  keep-alive. Then the end rules, in Nakadi's order:
  1. a non-zero `stream_keep_alive_limit` reached by every partition
     (nothing is pending then: an event read resets its partition's count);
  2. `stream_timeout_s` since the start, or `stream_limit` events read: the
     pending events are cut first (non-empty batches only).
- After the end, `end_reason` says why; `add` and `tick` raise
  `RuntimeError`.

A batch's cursor is the offset of its last event; a keep-alive's is the
partition's cursor, that is the last event sent or, before any, the start
cursor. Comparisons are written `start + timeout <= now`, the expression
`deadline()` returns, so waking exactly at the deadline fires the timer.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from .cursors import OFFSET_DIGITS, OFFSET_PREFIX, format_offset

BUFFERED_BYTES_MAX_DEFAULT = 50 * 1024 * 1024  # Nakadi's nakadi.stream.maxStreamMemoryBytes


class EndReason(enum.Enum):
    """Why the batcher ended a stream."""

    STREAM_TIMEOUT = "stream_timeout"
    STREAM_LIMIT = "stream_limit"
    KEEP_ALIVE_LIMIT = "stream_keep_alive_limit"


class Batch(NamedTuple):
    """Events of one partition to send, with the cursor after them. No
    events: a keep-alive."""

    partition: str
    offset: int
    events: list[bytes]


@dataclass(frozen=True)
class BatcherStatistics:
    """A snapshot: events read so far; events and bytes held pending (not
    yet in a batch) and ready (in batches `tick` has not handed out)."""

    events_read: int
    events_pending: int
    bytes_pending: int
    batches_ready: int
    bytes_ready: int


class _Partition:
    __slots__ = ("name", "events", "bytes", "offset", "flushed_at", "keep_alives")

    def __init__(self, name: str, offset: int, now: float) -> None:
        self.name = name
        self.events: list[bytes] = []
        self.bytes = 0
        self.offset = offset
        self.flushed_at = now
        self.keep_alives = 0


class Batcher:
    """Batches of one stream over the partitions of `start_offsets`
    (partition -> start cursor offset, exclusive), started at `now`.

    `batch_flush_timeout_s` and `stream_timeout_s` are positive seconds;
    `stream_limit` and `stream_keep_alive_limit` are 0 for unlimited.
    """

    def __init__(
        self,
        start_offsets: Mapping[str, int],
        now: float,
        *,
        batch_limit: int,
        batch_flush_timeout_s: float,
        stream_timeout_s: float,
        stream_limit: int = 0,
        stream_keep_alive_limit: int = 0,
        buffered_bytes_max: int = BUFFERED_BYTES_MAX_DEFAULT,
    ) -> None:
        assert start_offsets, "a stream has at least one partition"
        assert batch_limit >= 1, batch_limit
        assert batch_flush_timeout_s > 0 and stream_timeout_s > 0, (batch_flush_timeout_s, stream_timeout_s)
        assert stream_limit >= 0 and stream_keep_alive_limit >= 0, (stream_limit, stream_keep_alive_limit)
        assert buffered_bytes_max >= 0, buffered_bytes_max
        self._partitions = {name: _Partition(name, offset, now) for name, offset in start_offsets.items()}
        self._batch_limit = batch_limit
        self._flush_timeout_s = batch_flush_timeout_s
        self._stream_deadline = now + stream_timeout_s
        self._stream_limit = stream_limit
        self._keep_alive_limit = stream_keep_alive_limit
        self._bytes_max = buffered_bytes_max
        self._now = now
        self._events_read = 0
        self._bytes_pending = 0
        self._ready: list[Batch] = []
        self._bytes_ready = 0
        self._end: EndReason | None = None

    # -- input ---------------------------------------------------------

    def add(self, partition: str, offset: int, event: bytes) -> None:
        """Buffer the next event of `partition` (compact JSON bytes)."""
        if self._end is not None:
            raise RuntimeError(f"the stream has ended ({self._end.value})")
        assert not self._stream_limit or self._events_read < self._stream_limit, "stream_limit events were read"
        part = self._partitions[partition]
        assert offset > part.offset, (partition, offset, part.offset)
        part.offset = offset
        part.keep_alives = 0
        events = part.events
        events.append(event)
        self._events_read += 1
        size = len(event)
        if len(events) >= self._batch_limit:
            # The hot path of small batches, `_make_ready` inlined.
            self._bytes_pending -= part.bytes
            size += part.bytes
            part.events = []
            part.bytes = 0
            self._ready.append(Batch(partition, offset, events))
            self._bytes_ready += size
            return
        part.bytes += size
        self._bytes_pending += size
        while self._bytes_pending > self._bytes_max:
            self._make_ready(max(self._partitions.values(), key=_pending_bytes))

    def add_many(self, partition: str, first_offset: int, events: Sequence[bytes]) -> None:
        """`add` of each of `events`, at consecutive offsets from
        `first_offset`; while nothing is pending for the partition, whole
        batches are cut by slicing instead of event by event."""
        part = self._partitions[partition]
        limit = self._batch_limit
        i, n = 0, len(events)
        while n - i >= limit and not part.events and self._end is None:
            assert not self._stream_limit or self._events_read + limit <= self._stream_limit
            offset = first_offset + i + limit - 1
            assert offset - limit >= part.offset, (partition, offset, part.offset)
            chunk = list(events[i:i + limit])
            part.offset = offset
            part.keep_alives = 0
            self._events_read += limit
            self._ready.append(Batch(partition, offset, chunk))
            self._bytes_ready += sum(map(len, chunk))
            i += limit
        for j in range(i, n):
            self.add(partition, first_offset + j, events[j])

    def skip(self, partition: str, offset: int) -> None:
        """Move the partition's cursor to `offset` without an event (one a
        filter left out): the next batch's or keep-alive's cursor covers it."""
        part = self._partitions[partition]
        assert offset > part.offset, (partition, offset, part.offset)
        part.offset = offset

    def wants_events(self) -> bool:
        """Whether `add` may be called: the stream goes on and `stream_limit`
        events have not all been read."""
        return self._end is None and (self._stream_limit == 0 or self._events_read < self._stream_limit)

    def wants_more(self) -> bool:
        """Whether the shell should read more from storage now: events are
        wanted and the bytes held (pending and ready) are within the bound.
        When False, take the ready batches with `tick` and send them first."""
        return self.wants_events() and self._bytes_pending + self._bytes_ready < self._bytes_max

    # -- output --------------------------------------------------------

    def tick(self, now: float) -> list[Batch]:
        """The batches to send at `now`, in order; afterwards `end_reason`
        tells whether the stream is over."""
        if self._end is not None:
            raise RuntimeError(f"the stream has ended ({self._end.value})")
        assert now >= self._now, (now, self._now)
        self._now = now
        out = self._ready
        self._ready = []
        self._bytes_ready = 0
        partitions = self._partitions
        for batch in out:
            partitions[batch.partition].flushed_at = now
        timeout = self._flush_timeout_s
        for part in partitions.values():
            if part.flushed_at + timeout <= now:
                out.append(self._cut(part))
                part.flushed_at = now
        self._check_end(now, out)
        return out

    def _check_end(self, now: float, out: list[Batch]) -> None:
        limit = self._keep_alive_limit
        if limit and all(part.keep_alives >= limit for part in self._partitions.values()):
            self._end = EndReason.KEEP_ALIVE_LIMIT
            return
        if self._stream_deadline <= now:
            self._end = EndReason.STREAM_TIMEOUT
        elif self._stream_limit and self._events_read >= self._stream_limit:
            self._end = EndReason.STREAM_LIMIT
        else:
            return
        out.extend(self._cut(part) for part in self._partitions.values() if part.events)

    @property
    def end_reason(self) -> EndReason | None:
        """Why the stream ended, or None while it goes on."""
        return self._end

    def deadline(self) -> float:
        """The earliest time a timer fires: a partition's flush timeout or
        the stream timeout."""
        flush = min(part.flushed_at for part in self._partitions.values()) + self._flush_timeout_s
        return min(flush, self._stream_deadline)

    def next_wakeup(self, now: float) -> float:
        """Seconds the shell may wait before the next `tick`, unless storage
        has more: 0 when batches are ready or the stream must end now."""
        if self._ready or not self.wants_events():
            return 0.0
        return max(0.0, self.deadline() - now)

    def statistics(self) -> BatcherStatistics:
        """What the batcher holds now (computed, so not for every event)."""
        return BatcherStatistics(
            events_read=self._events_read,
            events_pending=sum(len(part.events) for part in self._partitions.values()),
            bytes_pending=self._bytes_pending,
            batches_ready=len(self._ready),
            bytes_ready=self._bytes_ready,
        )

    # -- internals -----------------------------------------------------

    def _cut(self, part: _Partition) -> Batch:
        """The partition's pending events as a batch (a keep-alive if none)."""
        events = part.events
        if events:
            part.events = []
            self._bytes_pending -= part.bytes
            part.bytes = 0
        else:
            events = []  # never the partition's own list, which fills later
            part.keep_alives += 1
        return Batch(part.name, part.offset, events)

    def _make_ready(self, part: _Partition) -> None:
        size = part.bytes
        self._ready.append(self._cut(part))
        self._bytes_ready += size


def _pending_bytes(part: _Partition) -> int:
    return part.bytes


# -- the bytes of a batch line --------------------------------------------
#
# Nakadi's EventStreamJsonWriter layout, no spaces:
#   {"cursor":{"partition":"0","offset":"001-0001-000000000000000006"},"events":[e1,e2]}\n
#   {"cursor":{"partition":"0","offset":"001-0001-000000000000000006"}}\n   (keep-alive)
# Events are stored as compact JSON and are never decoded here.

_CURSOR_CLOSE_EVENTS_OPEN = b'"},"events":['
_EVENTS_CLOSE_LINE_CLOSE = b"]}\n"
_CURSOR_CLOSE_LINE_CLOSE = b'"}}\n'
_OFFSET_PREFIX = OFFSET_PREFIX.encode()
_OFFSET_FORMAT = b"%0" + str(OFFSET_DIGITS).encode() + b"d"
_OFFSET_MAX = 10**OFFSET_DIGITS - 1


def _offset_bytes(offset: int) -> bytes:
    """`format_offset(offset).encode()`, in a third of its time."""
    if 0 <= offset <= _OFFSET_MAX:
        return _OFFSET_PREFIX + _OFFSET_FORMAT % offset
    return format_offset(offset).encode()


@lru_cache(maxsize=4096)
def _line_head(partition: str) -> bytes:
    """`{"cursor":{"partition":"P","offset":"`, made once per partition."""
    return b'{"cursor":{"partition":' + json.dumps(partition).encode() + b',"offset":"'


def batch_lines(batches: Iterable[Batch]) -> bytes:
    """The lines of low-level batches, joined for one send."""
    parts: list[bytes] = []
    append = parts.append
    for partition, offset, events in batches:
        append(_line_head(partition))
        append(_offset_bytes(offset))
        if not events:
            append(_CURSOR_CLOSE_LINE_CLOSE)
            continue
        append(_CURSOR_CLOSE_EVENTS_OPEN)
        append(events[0] if len(events) == 1 else b",".join(events))
        append(_EVENTS_CLOSE_LINE_CLOSE)
    return b"".join(parts)
