"""The broker: the one facade the API calls.

It owns the metadata store, the registry of event types, the partition
logs and the subscriptions of one data directory, and runs their
background work (retention).
Each method is one API operation in broker terms: JSON-shaped values in
and out, `BrokerError`s for everything a client did wrong.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import orjson
import trio

from storage import FileIO, StorageError

from . import authorization, cursors
from .authorization import UNAUTHENTICATED, Subject
from .config import StorageConfig
from .errors import BrokerError, ConflictError, ForbiddenError, NotFoundError, UnavailableError, UnprocessableError
from .event_json import parse_batch
from .event_stream import event_stream
from .event_types import EventTypeLimits
from .filters import parse_filters
from .metastore import Metastore
from .observer import Observer, Stream, StreamEnd, TimedSyncIO
from .partition_logs import PartitionLogs
from .publishing import Item, PublishOutcome, eid_of, publish
from .registry import Registry
from .stream_params import StreamParams
from .subscription_json import parse_subscription
from .subscription_model import PARTITIONS_MAX_DEFAULT, Subscription
from .subscription_streams import SubscriptionStreams
from .subscriptions import Subscriptions

log = logging.getLogger(__name__)
stream_log = logging.getLogger("nakadi.streams")

METADATA_FILE = "metadata.db"


@dataclass(frozen=True)
class BrokerConfig:
    data_dir: str
    storage: StorageConfig = field(default_factory=StorageConfig)
    limits: EventTypeLimits = field(default_factory=EventTypeLimits)
    retention_interval_s: float = 60.0
    subscription_partitions_max: int = PARTITIONS_MAX_DEFAULT
    io: FileIO | None = None  # the storage's system calls; tests and fault hooks replace it


class Broker:
    """Event types, publishing, reading and subscriptions over one data directory."""

    def __init__(self, config: BrokerConfig, metastore: Metastore, registry: Registry, logs: PartitionLogs,
                 subscriptions: Subscriptions) -> None:
        self.config = config
        self._metastore = metastore
        self._registry = registry
        self._logs = logs
        self.subscriptions = subscriptions
        self._streams = SubscriptionStreams(metastore, logs, lambda name: registry.runtime(name).partition_count)
        subscriptions.status_of = self._streams.status
        self.observer = Observer()

    @classmethod
    def open(cls, config: BrokerConfig) -> Broker:
        """Open the data directory: metadata, then every partition log (recovery
        runs here). Damage that recovery refuses to repair is an
        `UnavailableError` naming the file, position and offset."""
        os.makedirs(config.data_dir, exist_ok=True)
        metastore = Metastore(os.path.join(config.data_dir, METADATA_FILE))
        registry = Registry(metastore, config.limits)
        logs = PartitionLogs(config.data_dir, config.storage.log, config.storage.recover,
                             TimedSyncIO(config.io or FileIO()))
        try:
            logs.open_all({name: registry.runtime(name).partition_count for name in registry.names()})
        except StorageError as e:
            logs.close_all()
            metastore.close()
            raise UnavailableError(f"cannot open the partition logs: {e}") from e

        def bounds_of(name: str) -> list[tuple[int, int]] | None:
            try:
                registry.runtime(name)
            except NotFoundError:
                return None
            return logs.all_bounds(name) if logs.has(name) else None
        subscriptions = Subscriptions(metastore, bounds_of, partitions_max=config.subscription_partitions_max)
        return cls(config, metastore, registry, logs, subscriptions)

    async def readiness(self) -> dict:
        """Whether the storage takes writes (it does until an append fails,
        and again once one succeeds) and the metadata store answers."""
        storage = {"writable": self._logs.write_failure is None}
        if self._logs.write_failure is not None:
            storage["detail"] = self._logs.write_failure
        try:
            await trio.to_thread.run_sync(self._metastore.check)
            metadata: dict[str, object] = {"available": True, "writable": self._metastore.write_failure is None}
            if self._metastore.write_failure is not None:
                metadata["detail"] = self._metastore.write_failure
        except Exception as e:  # any failure of the store is what this reports
            metadata = {"available": False, "writable": False, "detail": str(e)}
        ready = storage["writable"] and metadata["available"] and metadata["writable"]
        return {"status": "ready" if ready else "not ready", "storage": storage, "metadata": metadata}

    def observe(self, observer: Observer) -> None:
        """Report to `observer` from now on (one observer at a time)."""
        self.observer = observer
        if isinstance(self._logs.io, TimedSyncIO):
            self._logs.io.synced = observer.synced

    def storage_bytes(self) -> dict[str, int]:
        """The bytes the partition logs of each event type take on disk."""
        return {name: self._logs.size_bytes(name) for name in self._registry.names() if self._logs.has(name)}

    async def committed_lags(self) -> list[tuple[str, str, str, int]]:
        """(subscription id, event type, partition, unconsumed events after
        the committed cursor) of every partition of every subscription that
        has cursors (that streamed, committed or was reset at least once)."""
        return await self._streams.committed_lags()

    def end_streams(self) -> None:
        """Make every open stream end now, as at shutdown; no new stream starts."""
        self._logs.end_streams()

    def close(self) -> None:
        self._logs.close_all()
        self._metastore.close()

    async def run_retention(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Delete expired segments of every event type, forever, every
        interval. A failure is logged and retried next time; it never stops
        the server."""
        task_status.started()
        while True:
            for name in self._registry.names():
                try:
                    await self._enforce_retention(name)
                except (NotFoundError, UnavailableError) as e:
                    log.warning("retention of %s skipped: %s", name, e.detail)
            await trio.sleep(self.config.retention_interval_s)

    async def _enforce_retention(self, name: str) -> None:
        retention_ms = self._registry.runtime(name).event_type.retention_ms
        if retention_ms is not None and self._logs.has(name):
            deleted = await self._logs.enforce_retention(name, retention_ms)
            if deleted:
                log.info("retention deleted %d segment(s) of %s", deleted, name)

    # -- event types -------------------------------------------------------

    def list_event_types(self, *, owning_application: str | None = None, writer: str | None = None) -> list[dict]:
        return self._registry.list(owning_application=owning_application, writer=writer)

    def get_event_type(self, name: str) -> dict:
        return self._registry.get(name)

    async def create_event_type(self, body: object) -> None:
        async with self._registry.lock:
            runtime = await self._registry.create(body, _now())
            try:
                await self._logs.create(runtime.name, runtime.partition_count)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self._registry.delete(runtime.name)
                raise

    async def update_event_type(self, name: str, body: object, *, subject: Subject = UNAUTHENTICATED) -> None:
        async with self._registry.lock:
            self._check_event_type(subject, name, "admins")
            await self._registry.update(name, body, _now())

    async def delete_event_type(self, name: str, *, subject: Subject = UNAUTHENTICATED) -> None:
        """Delete `name` and its events; 409 while a subscription reads it."""
        async with self._registry.lock:
            self._check_event_type(subject, name, "admins")
            if await self.subscriptions.ids_reading(name):
                raise ConflictError(f"Can't remove event type {name}, as it has subscriptions")
            await self._registry.delete(name)
            await self._logs.delete(name)

    async def add_schema(self, name: str, body: object, *, subject: Subject = UNAUTHENTICATED) -> None:
        async with self._registry.lock:
            self._check_event_type(subject, name, "admins")
            await self._registry.add_schema(name, body, _now())

    def find_schema(self, name: str, body: object) -> dict:
        return self._registry.find_schema(name, body)

    def schema_compatibility(self, name: str, version: str, body: object) -> dict:
        return self._registry.compatibility(name, version, body)

    def schemas(self, name: str, limit: int, offset: int) -> tuple[list[dict], int]:
        return self._registry.schemas(name, limit, offset)

    def schema(self, name: str, version: str) -> dict:
        return self._registry.schema(name, version)

    # -- publishing --------------------------------------------------------

    async def publish(self, name: str, body: bytes, *, flow_id: str,
                      subject: Subject = UNAUTHENTICATED) -> PublishOutcome:
        started = time.perf_counter()
        runtime = self._registry.runtime(name)
        authorization.check_event_type(subject, name, runtime.event_type.authorization, "writers")
        stored = [0, 0]  # events, bytes

        async def append(groups: dict[str, list[bytes]]) -> dict[str, BrokerError]:
            failures = await self._logs.append(name, {int(partition): group for partition, group in groups.items()})
            for partition, group in groups.items():
                if int(partition) not in failures:
                    stored[0] += len(group)
                    stored[1] += sum(map(len, group))
            return {str(partition): failure for partition, failure in failures.items()}
        try:
            return await publish(runtime, body, append, flow_id=flow_id, published_by=subject.value,
                                 now_ms=_now_ms())
        finally:  # after the checks above, so an unknown name never becomes a label
            self.observer.published(name, stored[0], stored[1], time.perf_counter() - started)

    def publish_deletions(self, name: str, body: bytes, *, subject: Subject = UNAUTHENTICATED) -> PublishOutcome:
        """`deleted-events`: allowed for compacted event types only, and this
        broker has none, so every event is aborted (422), as Nakadi answers
        for a non-compacted type."""
        self._check_event_type(subject, name, "writers")
        events = parse_batch(body)
        return PublishOutcome(422, [Item(eid_of(event)).to_json() for event in events])

    # -- partitions and cursors --------------------------------------------

    def partitions(self, name: str, cursors_param: str | None, *, subject: Subject = UNAUTHENTICATED) -> list[dict]:
        self._check_event_type(subject, name, "readers")
        return cursors.list_partitions(name, self._logs.all_bounds(name), cursors_param)

    def partition(self, name: str, partition: str, consumed_offset: str | None, *, subject: Subject = UNAUTHENTICATED) -> dict:
        self._check_event_type(subject, name, "readers")
        return cursors.get_partition(name, self._logs.all_bounds(name), partition, consumed_offset)

    def cursor_distances(self, name: str, body: object, *, subject: Subject = UNAUTHENTICATED) -> list[dict]:
        self._check_event_type(subject, name, "readers")
        return cursors.cursor_distances(self._logs.all_bounds(name), body)

    def cursors_lag(self, name: str, body: object, *, subject: Subject = UNAUTHENTICATED) -> list[dict]:
        self._check_event_type(subject, name, "readers")
        return cursors.cursors_lag(self._logs.all_bounds(name), body)

    def shifted_cursors(self, name: str, body: object, *, subject: Subject = UNAUTHENTICATED) -> list[dict]:
        self._check_event_type(subject, name, "readers")
        return cursors.shifted_cursors(self._logs.all_bounds(name), body)

    # -- subscriptions -----------------------------------------------------

    async def create_subscription(self, body: object, *, subject: Subject = UNAUTHENTICATED) -> tuple[dict, bool]:
        """The subscription with the key of `body` and whether it is new (201)
        or already existed (200, returned as stored); the subject must read
        every event type of it."""
        for name in parse_subscription(body).event_types:
            if self._registry.has(name):
                self._check_event_type(subject, name, "readers")
        async with self._registry.lock:
            subscription, created = await self.subscriptions.create(body, _now())
        return self.subscriptions.get_json(subscription.id), created

    async def list_subscriptions(self, *, owning_application: str | None = None, event_types: Sequence[str] = (),
                                 reader: str | None = None, show_status: bool = False, limit: int = 20,
                                 offset: int = 0) -> dict:
        return await self.subscriptions.list(owning_application=owning_application, event_types=event_types,
                                             reader=reader, show_status=show_status, limit=limit, offset=offset)

    def get_subscription(self, subscription_id: str, *, show_status: bool = False) -> dict:
        return self.subscriptions.get_json(subscription_id, show_status=show_status)

    async def update_subscription(self, subscription_id: str, body: object, *,
                                  subject: Subject = UNAUTHENTICATED) -> None:
        self._subscription(subscription_id, subject, "admins")
        await self.subscriptions.update(subscription_id, body, _now())

    async def delete_subscription(self, subscription_id: str, *, subject: Subject = UNAUTHENTICATED) -> None:
        self._subscription(subscription_id, subject, "admins")
        await self.subscriptions.delete(subscription_id)
        self._streams.forget(subscription_id)

    # -- subscription streams and cursors ----------------------------------

    async def open_subscription_stream(self, subscription_id: str, values: dict[str, object],
                                       partitions: object = None, *, subject: Subject = UNAUTHENTICATED,
                                       flow_id: str = "") -> tuple[str, AsyncIterator[bytes]]:
        """Check access, the parameters and take a slot (400/403/404/409/422);
        the stream id and its lines, which end once access is lost."""
        def check() -> None:
            subscription = self._subscription(subscription_id, subject, "readers")
            for name in subscription.event_types:
                self._check_event_type(subject, name, "readers")
        check()
        if self._logs.streams_ended:
            raise UnavailableError("the server is shutting down")
        stream = Stream("subscription", subscription_id, "", flow_id, self.observer)
        stream_id, lines = await self._streams.open_stream(self.subscriptions.get(subscription_id), values,
                                                           partitions, stream)
        stream.stream_id = stream_id
        return stream_id, self._watched(lines, check, stream)

    async def commit_cursors(self, subscription_id: str, stream_id: str | None, body: object, *,
                             subject: Subject = UNAUTHENTICATED) -> list[dict] | None:
        """None when every cursor was committed (204), else the per-cursor results (200)."""
        return await self._streams.commit(self._subscription(subscription_id, subject, "readers"), stream_id, body)

    async def subscription_cursors(self, subscription_id: str, *, subject: Subject = UNAUTHENTICATED) -> list[dict]:
        return await self._streams.committed_cursors(self._subscription(subscription_id, subject, "readers"))

    async def reset_cursors(self, subscription_id: str, body: object, *, subject: Subject = UNAUTHENTICATED) -> None:
        await self._streams.reset(self._subscription(subscription_id, subject, "admins"), body)

    async def subscription_stats(self, subscription_id: str, show_time_lag: bool, *,
                                 subject: Subject = UNAUTHENTICATED) -> list[dict]:
        return await self._streams.stats(self._subscription(subscription_id, subject, "readers"), show_time_lag)

    # -- low-level streams -------------------------------------------------

    def open_stream(self, name: str, cursors_header: str | None, params: StreamParams,
                    filters_param: str | None = None, *, subject: Subject = UNAUTHENTICATED,
                    flow_id: str = "") -> AsyncIterator[bytes]:
        """Check access (403), the start cursors (400/404/412) and the filters
        (the JSON text of a `filters` list, 422), and return the stream's
        lines, which end once read access is lost."""
        self._check_event_type(subject, name, "readers")
        if self._logs.streams_ended:
            raise UnavailableError("the server is shutting down")
        event_filter = None if filters_param is None else parse_filters(_filters_json(filters_param))
        starts = cursors.stream_start(name, self._logs.all_bounds(name), cursors_header)
        stream = Stream("event-type", name, str(uuid.uuid4()), flow_id, self.observer)
        lines = event_stream(self._logs, name, starts, params, event_filter, stream)
        return self._watched(lines, lambda: self._check_event_type(subject, name, "readers"), stream)

    async def _watched(self, lines: AsyncIterator[bytes], check: Callable[[], None],
                       stream: Stream) -> AsyncIterator[bytes]:
        """`lines` until `check` refuses (or the resource is gone): access is
        checked again before every batch and keep-alive. The stream's start
        and end, with why it ended, are logged and reported."""
        stream.observer.stream_opened(stream)
        _log_stream(stream, "opened")
        end, detail = StreamEnd.CLIENT_GONE, None  # unless it ends otherwise
        try:
            async with contextlib.aclosing(lines):  # type: ignore[type-var]
                async for chunk in lines:
                    try:
                        check()
                    except (ForbiddenError, NotFoundError) as e:
                        end, detail = StreamEnd.ACCESS_LOST, e.detail
                        return
                    yield chunk
            end = stream.end or (StreamEnd.SHUTDOWN if self._logs.streams_ended else StreamEnd.CLOSED)
        except BrokerError as e:
            end, detail = StreamEnd.ERROR, e.detail
            raise
        finally:
            if end is StreamEnd.CLIENT_GONE and self._logs.streams_ended:
                end = StreamEnd.SHUTDOWN
            stream.observer.stream_closed(stream, end)
            _log_stream(stream, "closed", end, detail)

    # -- authorization -----------------------------------------------------

    def _check_event_type(self, subject: Subject, name: str, role: str) -> None:
        """404 if `name` does not exist, 403 unless `subject` acts as `role` on it."""
        authorization.check_event_type(subject, name, self._registry.runtime(name).event_type.authorization, role)

    def _subscription(self, subscription_id: str, subject: Subject, role: str) -> Subscription:
        """The subscription (404 if none), once `subject` may act as `role` on it (else 403)."""
        subscription = self.subscriptions.get(subscription_id)
        authorization.check_subscription(subject, subscription_id, subscription.authorization, role)
        return subscription


def _log_stream(stream: Stream, what: str, end: StreamEnd | None = None, detail: str | None = None) -> None:
    """One line for a stream's start or end, its facts as fields."""
    fields: dict[str, object] = {"stream_kind": stream.kind, "stream_of": stream.name,
                                 "stream_id": stream.stream_id, "flow_id": stream.flow_id}
    if end is not None:
        fields.update(reason=end.value, events=stream.events)
    if detail is not None:
        fields["detail"] = detail
    reason = f": {end.value}" if end is not None else ""
    stream_log.info("%s stream %s of %s %s%s", stream.kind, stream.stream_id, stream.name, what, reason,
                    extra=fields)


def _filters_json(text: str) -> object:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise UnprocessableError(f"filters: not JSON ({e}); send a URL-encoded JSON list of filter expressions") \
            from e


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
