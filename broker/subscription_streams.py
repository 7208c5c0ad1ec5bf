"""Everything about subscriptions that happens after they are created:
streams, commits, the committed cursors, resets and stats.

Committed cursors live in the metastore (SQLite, synchronous FULL) and are
written there before a commit or a reset is answered, so a 204 survives
`kill -9`. The live state of each subscription is a `Coordinator`, made
at its first stream, commit or reset. A subscription's start (`read_from`)
becomes concrete cursors lazily, at its first stream or reset, as Nakadi's
SubscriptionInitializer does.

The subscription itself is passed in (`SubscriptionView`): this module
never reads or changes the subscription documents.
"""

from __future__ import annotations

import datetime
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import trio

from . import cursors
from .cursors import BEGIN, InvalidCursor, format_offset, parse_offset
from .errors import ConflictError, InvalidRequestError, UnprocessableError
from .filters import parse_filters
from .metastore import Metastore
from .observer import Stream
from .partition_logs import PartitionLogs
from .rebalance import PartitionKey, State
from .subscription_coordinator import Coordinator
from .subscription_params import COMMIT_TIMEOUT_S_MAX, parse_subscription_stream_params
from .subscription_stream import subscription_stream

RESET_MESSAGE = "Resetting subscription cursors"
RESET_WAIT_S = COMMIT_TIMEOUT_S_MAX + 1
_POLL_S = 0.1


class SubscriptionView(Protocol):
    """What this module needs of a subscription."""

    id: str
    event_types: list[str]
    read_from: str
    initial_cursors: list[dict] | None
    filters: list[dict] | None


class SubscriptionStreams:
    """Streams and cursors of every subscription of one broker."""

    def __init__(self, metastore: Metastore, logs: PartitionLogs, partition_count: Callable[[str], int]) -> None:
        self._metastore = metastore
        self._logs = logs
        self._partition_count = partition_count
        self._coordinators: dict[str, Coordinator] = {}
        self._lock = trio.Lock()
        self._rng = random.Random()

    # -- streams -----------------------------------------------------------

    async def open_stream(self, subscription: SubscriptionView, values: dict[str, object],
                          partitions: object = None, stream: Stream | None = None
                          ) -> tuple[str, AsyncIterator[bytes]]:
        """Check the parameters (400/422) and the direct `partitions` (a
        POST body's list; 422), take a slot (409); the stream id and lines
        (`stream` learns the events sent and why it ended)."""
        params = parse_subscription_stream_params(values, self._rng)
        keys = self._direct_partitions(subscription, partitions)
        coordinator = await self._coordinator(subscription, initialize=True)
        session = coordinator.open_session(keys, params, trio.current_time())
        lines = subscription_stream(coordinator, session, self._logs, self._indexes(subscription), stream)
        return session.stream_id, lines

    def _direct_partitions(self, subscription: SubscriptionView, partitions: object) -> list[PartitionKey]:
        if partitions is None:
            return []
        if not isinstance(partitions, list):
            raise InvalidRequestError("partitions must be a list of {event_type, partition}")
        known = self._indexes(subscription)
        keys = []
        for item in partitions:
            if not isinstance(item, dict) or not isinstance(item.get("event_type"), str) \
                    or not isinstance(item.get("partition"), str):
                raise UnprocessableError("every requested partition needs an event_type and a partition")
            key = PartitionKey(item["event_type"], item["partition"])
            if key not in known:
                raise UnprocessableError(f"Wrong partitions specified - some partitions don't belong to "
                                         f"subscription: EventTypePartition{{eventType='{key.event_type}', "
                                         f"partition='{key.partition}'}}")
            if key in keys:
                raise UnprocessableError("Duplicated partition specified")
            keys.append(key)
        return keys

    # -- commits -------------------------------------------------------------

    async def commit(self, subscription: SubscriptionView, stream_id: str | None, body: object) -> list[dict] | None:
        """Commit cursors for the stream `stream_id`: None when all were
        committed (204), else one {cursor, result} per cursor (200)."""
        items = _items(body)
        if not items:
            raise UnprocessableError("Cursors are empty")
        coordinator = self._coordinators.get(subscription.id)
        session = coordinator.sessions.get(stream_id or "") if coordinator else None
        if coordinator is None or session is None:
            raise UnprocessableError(f"Session with stream id {stream_id} not found")
        parsed = [self._commit_cursor(subscription, item) for item in items]
        for key, _, item in parsed:
            if not coordinator.owner_check(session, key):
                raise UnprocessableError(f"Cursor {_describe(item)} cannot be committed with stream id {stream_id}")
        async with coordinator.commit_lock:  # compare and write as one step, or a late commit could go back
            newer: dict[PartitionKey, int] = {}
            results = []
            for key, offset, item in parsed:
                committed = offset is not BEGIN and offset > max(coordinator.committed[key], newer.get(key, -2))
                if committed:
                    newer[key] = offset
                results.append({"cursor": item, "result": "committed" if committed else "outdated"})
            if newer:
                await self._write(subscription.id, newer)
                coordinator.committed_now(session, newer, trio.current_time())
        return None if all(r["result"] == "committed" for r in results) else results

    def _commit_cursor(self, subscription: SubscriptionView, item: object) -> tuple[PartitionKey, int, dict]:
        if not isinstance(item, dict):
            raise UnprocessableError("a cursor must be an object")
        for name in ("event_type", "partition", "offset", "cursor_token"):
            if not isinstance(item.get(name), str):
                raise UnprocessableError(f"{name} must not be null")
        key = PartitionKey(item["event_type"], item["partition"])
        indexes = self._indexes(subscription)
        if key not in indexes:
            raise UnprocessableError(f"non existing partition {key.partition}")
        try:
            offset = parse_offset(item["offset"])
            if offset is not BEGIN:
                start, end = self._logs.bounds(key.event_type, indexes[key])
                if offset > end - 1:
                    raise InvalidCursor(cursors.CursorProblem.UNAVAILABLE, key.partition, item["offset"])
        except InvalidCursor as e:
            raise UnprocessableError(e.at(key.partition).detail(key.event_type)) from e
        return key, offset, item

    # -- cursors and reset -----------------------------------------------------

    async def committed_cursors(self, subscription: SubscriptionView) -> list[dict]:
        """The committed cursor of every partition with a fresh token; [] before initialisation."""
        coordinator = await self._coordinator(subscription, initialize=False)
        if coordinator is None:
            return []
        return [{"event_type": key.event_type, "partition": key.partition,
                 "offset": format_offset(coordinator.committed[key]), "cursor_token": str(uuid.uuid4())}
                for key in coordinator.partitions]

    async def reset(self, subscription: SubscriptionView, body: object) -> None:
        """Move the listed partitions' cursors (all streams close first); an
        empty list only initialises. 409 while another reset runs."""
        targets = {}
        for item in _items(body):
            key, offset = await self._reset_cursor(subscription, item)
            targets[key] = offset
        coordinator = await self._coordinator(subscription, initialize=True)  # only once all items are valid
        assert coordinator is not None
        if not targets:
            return
        if coordinator.resetting:
            raise ConflictError("Cursors reset is already in progress for provided subscription")
        coordinator.resetting = True
        try:
            coordinator.close_all(RESET_MESSAGE)
            with trio.move_on_after(RESET_WAIT_S):
                while any(not s.ended for s in coordinator.sessions.values()):
                    await trio.sleep(_POLL_S)
                    coordinator.expire(trio.current_time())
            coordinator.drop_all_sessions()
            async with coordinator.commit_lock:
                await self._write(subscription.id, targets)
                coordinator.committed_now(None, targets, trio.current_time())
        finally:
            coordinator.resetting = False

    async def _reset_cursor(self, subscription: SubscriptionView, item: object) -> tuple[PartitionKey, int]:
        """A reset target: an offset (also BEGIN and our END), or a
        `timestamp` (ours: just before the first event received at or after it)."""
        if not isinstance(item, dict) or not isinstance(item.get("event_type"), str) \
                or not isinstance(item.get("partition"), str):
            raise UnprocessableError("every cursor needs an event_type and a partition")
        key = PartitionKey(item["event_type"], item["partition"])
        indexes = self._indexes(subscription)
        if key.event_type not in subscription.event_types:
            raise UnprocessableError(f"Event type {key.event_type} is not in subscription {subscription.id}")
        if key not in indexes:
            raise UnprocessableError(f"non existing partition {key.partition}")
        start, end = self._logs.bounds(key.event_type, indexes[key])
        if "timestamp" in item and "offset" not in item:
            ms = _timestamp_ms(item["timestamp"])
            return key, await self._logs.offset_at_or_after(key.event_type, indexes[key], ms) - 1
        offset_text = item.get("offset")
        if not isinstance(offset_text, str):
            raise UnprocessableError("offset must not be null")
        if offset_text.upper() == "END":
            return key, end - 1
        try:
            offset = cursors.resolve(parse_offset(offset_text), start, end)
            cursors.require_available(key.partition, offset, start, end)
        except InvalidCursor as e:
            raise UnprocessableError(e.at(key.partition).detail(key.event_type)) from e
        return key, offset

    # -- stats -------------------------------------------------------------------

    async def stats(self, subscription: SubscriptionView, show_time_lag: bool) -> list[dict]:
        coordinator = await self._coordinator(subscription, initialize=False)
        if coordinator is not None:
            coordinator.expire(trio.current_time())
        indexes = self._indexes(subscription)
        now_ms = time.time_ns() // 1_000_000
        items = []
        for event_type in sorted(subscription.event_types):
            partitions = []
            for key in sorted((k for k in indexes if k.event_type == event_type), key=lambda k: indexes[k]):
                view = await self._partition_stats(coordinator, key, indexes[key], show_time_lag, now_ms)
                partitions.append(view)
            items.append({"event_type": event_type, "partitions": partitions})
        return items

    async def _partition_stats(self, coordinator: Coordinator | None, key: PartitionKey, index: int,
                               show_time_lag: bool, now_ms: int) -> dict:
        assignment = coordinator.assignment.get(key) if coordinator else None
        state = assignment.state if assignment else State.UNASSIGNED
        view: dict[str, object] = {"partition": key.partition, "state": state.value}
        if coordinator is not None:
            start, end = self._logs.bounds(key.event_type, index)
            committed = coordinator.committed[key]
            view["unconsumed_events"] = max(0, cursors.lag(committed, start, end))
            if show_time_lag:
                received = await self._logs.received_ms(key.event_type, index, max(committed + 1, start))
                view["consumer_lag_seconds"] = 0 if received is None else max(0, (now_ms - received) // 1000)
        view["stream_id"] = assignment.stream_id if assignment and state is not State.UNASSIGNED else ""
        if assignment and state is not State.UNASSIGNED:
            view["assignment_type"] = "direct" if assignment.direct else "auto"
        return view

    async def committed_lags(self) -> list[tuple[str, str, str, int]]:
        """(subscription id, event type, partition, lag) of each committed
        cursor in the metastore, whose cursors are written before a commit
        is answered; partitions of deleted event types are left out."""
        def read() -> list[tuple[str, dict[tuple[str, int], int]]]:
            ids = self._metastore.subscription_ids()
            return [(i, cursors_of) for i in ids if (cursors_of := self._metastore.subscription_cursors(i))]
        lags = []
        for subscription_id, committed in await trio.to_thread.run_sync(read):
            for (event_type, index), offset in sorted(committed.items()):
                if self._logs.has(event_type) and index < len(self._logs.all_bounds(event_type)):
                    start, end = self._logs.bounds(event_type, index)
                    lags.append((subscription_id, event_type, str(index), max(0, cursors.lag(offset, start, end))))
        return lags

    def status(self, subscription: SubscriptionView) -> list[dict]:
        """`show_status` of a subscription: each partition's state and stream."""
        coordinator = self._coordinators.get(subscription.id)
        indexes = self._indexes(subscription)
        out = []
        for event_type in subscription.event_types:
            partitions = []
            for key in sorted((k for k in indexes if k.event_type == event_type), key=lambda k: indexes[k]):
                assignment = coordinator.assignment.get(key) if coordinator else None
                if assignment is None or assignment.state is State.UNASSIGNED:
                    partitions.append({"partition": key.partition, "state": "unassigned", "stream_id": ""})
                else:
                    partitions.append({"partition": key.partition, "state": assignment.state.value,
                                       "stream_id": assignment.stream_id,
                                       "assignment_type": "direct" if assignment.direct else "auto"})
            out.append({"event_type": event_type, "partitions": partitions})
        return out

    def forget(self, subscription_id: str) -> None:
        """The subscription was deleted: its streams end now."""
        coordinator = self._coordinators.pop(subscription_id, None)
        if coordinator is not None:
            coordinator.drop_all_sessions()

    # -- internals ---------------------------------------------------------------

    def _indexes(self, subscription: SubscriptionView) -> dict[PartitionKey, int]:
        return {PartitionKey(event_type, str(i)): i for event_type in subscription.event_types
                for i in range(self._partition_count(event_type))}

    async def _coordinator(self, subscription: SubscriptionView, *, initialize: bool) -> Coordinator | None:
        async with self._lock:
            coordinator = self._coordinators.get(subscription.id)
            if coordinator is not None:
                return coordinator
            committed = await trio.to_thread.run_sync(self._metastore.subscription_cursors, subscription.id)
            if committed is None:
                if not initialize:
                    return None
                await trio.to_thread.run_sync(self._metastore.initialize_subscription_cursors, subscription.id,
                                              self._starts(subscription))
                committed = await trio.to_thread.run_sync(self._metastore.subscription_cursors, subscription.id)
                assert committed is not None
            indexes = self._indexes(subscription)
            if any((key.event_type, index) not in committed for key, index in indexes.items()):
                committed = {**self._starts(subscription), **committed}  # partitions added since
            state = {key: committed[(key.event_type, index)] for key, index in indexes.items()}
            coordinator = self._coordinators[subscription.id] = Coordinator(
                subscription.id, list(indexes), state, parse_filters(subscription.filters or []))
            return coordinator

    def _starts(self, subscription: SubscriptionView) -> dict[tuple[str, int], int]:
        """Concrete cursors for `read_from`, now."""
        given = {(c["event_type"], str(c["partition"])): c["offset"] for c in subscription.initial_cursors or []}
        starts = {}
        for key, index in self._indexes(subscription).items():
            start, end = self._logs.bounds(key.event_type, index)
            if subscription.read_from == "begin":
                starts[(key.event_type, index)] = start - 1
            elif subscription.read_from == "cursors" and (key.event_type, key.partition) in given:
                starts[(key.event_type, index)] = cursors.resolve(
                    parse_offset(given[(key.event_type, key.partition)]), start, end)
            else:
                starts[(key.event_type, index)] = end - 1
        return starts

    async def _write(self, subscription_id: str, cursors_by_key: dict[PartitionKey, int]) -> None:
        rows = {(key.event_type, int(key.partition)): offset for key, offset in cursors_by_key.items()}
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._metastore.write_subscription_cursors, subscription_id, rows)
        self._logs.io.crash_point("cursor.commit.written")


def _items(body: object) -> list:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise InvalidRequestError('the body must be an object with a list "items"')
    return body["items"]


def _describe(item: dict) -> str:
    return (f"SubscriptionCursor{{partition='{item['partition']}', offset='{item['offset']}', "
            f"eventType='{item['event_type']}', cursorToken='{item['cursor_token']}'}}")


def _timestamp_ms(value: object) -> int:
    if not isinstance(value, str):
        raise UnprocessableError("timestamp must be an RFC 3339 date-time")
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UnprocessableError(f"timestamp {value} is not an RFC 3339 date-time") from None
    if moment.tzinfo is None:
        raise UnprocessableError(f"timestamp {value} has no time zone")
    return int(moment.timestamp() * 1000)
