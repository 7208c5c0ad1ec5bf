"""The low-level event stream: the trio shell around the sans-IO `Batcher`.

It reads acknowledged records from the partition logs (in worker threads)
only while the batcher has room, so a slow client never makes the server
buffer without bound: the generator is suspended while the HTTP layer
waits for the socket, and nothing is read meanwhile. Every batch that is
due at a tick goes out as one chunk of lines. With nothing to read, it
sleeps until a publish to the event type wakes it or the next timer fires.
It ends when a rule of the batcher says so, when the event type is
deleted, or when the server shuts down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

from .batching import Batcher, EndReason, batch_lines
from .filters import Filter
from .observer import Stream, StreamEnd
from .partition_logs import PartitionLogs
from .stream_params import StreamParams

READ_RECORDS_MAX = 1000
READ_BYTES_MAX = 1024 * 1024
_ENDS = {EndReason.STREAM_LIMIT: StreamEnd.STREAM_LIMIT, EndReason.STREAM_TIMEOUT: StreamEnd.STREAM_TIMEOUT,
         EndReason.KEEP_ALIVE_LIMIT: StreamEnd.KEEP_ALIVE_LIMIT}


async def event_stream(logs: PartitionLogs, name: str, starts: dict[int, int],
                       params: StreamParams, event_filter: Filter | None = None,
                       stream: Stream | None = None) -> AsyncIterator[bytes]:
    """Lines of Nakadi's stream of `name` from the cursors `starts`
    ({partition: last consumed offset}) until an end-of-stream rule holds;
    with `event_filter`, only the events it matches (the cursors still
    move past the others). `stream` learns the events sent and why the
    stream ended."""
    batcher = Batcher({str(p): cursor for p, cursor in starts.items()}, trio.current_time(),
                      batch_limit=params.batch_limit, batch_flush_timeout_s=params.batch_flush_timeout_s,
                      stream_timeout_s=params.stream_timeout_s, stream_limit=params.stream_limit,
                      stream_keep_alive_limit=params.stream_keep_alive_limit)
    next_offsets = {p: cursor + 1 for p, cursor in starts.items()}
    # Records still to read for stream_limit; a filtered stream cannot know
    # how many records its events take, and stops adding at the limit instead.
    unread = params.stream_limit or None if event_filter is None else None
    while True:
        appended = logs.appended(name)
        read = await _read_available(logs, name, batcher, next_offsets, unread, event_filter)
        if unread is not None:
            unread -= read
        batches = batcher.tick(trio.current_time())
        if batches:
            if stream is not None:
                stream.sent(name, sum(len(batch.events) for batch in batches))
            yield batch_lines(batches)
        end = _end(batcher, logs, name)
        if end is not None:
            if stream is not None:
                stream.end = end
            return
        if not read:
            with trio.move_on_after(batcher.next_wakeup(trio.current_time())):
                await appended.wait()


def _end(batcher: Batcher, logs: PartitionLogs, name: str) -> StreamEnd | None:
    if batcher.end_reason is not None:
        return _ENDS[batcher.end_reason]
    if not logs.has(name):
        return StreamEnd.DELETED
    return StreamEnd.SHUTDOWN if logs.streams_ended else None


async def _read_available(logs: PartitionLogs, name: str, batcher: Batcher, next_offsets: dict[int, int],
                          unread: int | None, event_filter: Filter | None) -> int:
    """Read what the partitions have, while the batcher wants it; how many
    records were read (matching `event_filter` or not)."""
    total = 0
    for partition, offset in next_offsets.items():
        if not logs.has(name) or not batcher.wants_more() or unread == total:
            break
        if offset >= logs.bounds(name, partition)[1]:
            continue
        limit = READ_RECORDS_MAX if unread is None else min(READ_RECORDS_MAX, unread - total)
        runs = await logs.read_runs(name, partition, offset, limit, READ_BYTES_MAX)
        key = str(partition)
        for run in runs:
            if event_filter is None:
                batcher.add_many(key, run.first_offset, run.payloads)
            else:
                _add_matching(batcher, key, run.first_offset, run.payloads, event_filter)
            total += len(run.payloads)
        next_offsets[partition] = runs[-1].end_offset
    return total


def _add_matching(batcher: Batcher, key: str, first_offset: int, payloads: list[bytes], event_filter: Filter) -> None:
    for offset, payload in enumerate(payloads, first_offset):
        if not batcher.wants_events():
            return  # stream_limit reached: the stream ends with what it has
        if event_filter.matches_json(payload):
            batcher.add(key, offset, payload)
        else:
            batcher.skip(key, offset)
