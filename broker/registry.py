"""The event types the broker serves: their definitions in the metastore,
their compiled validators in memory, and the rules for changing them.

The metastore is the durable truth; this cache of `EventTypeRuntime`s is
rebuilt from it at start-up and changed only after the metastore commit
succeeded, so the two never disagree. Mutations are serialised by one lock.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import replace

import orjson
import trio

from . import event_types as et_rules
from .errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    UnprocessableError,
)
from .event_type_json import (
    from_json,
    parse_event_type,
    parse_schema_body,
    parse_schema_text_body,
    schema_from_json,
    to_json,
)
from .event_types import CleanupPolicy, EventType, EventTypeLimits
from .event_validation import Validator
from .metastore import PAGE_OFFSET_MAX, Metastore, SchemaRow
from .partitioning import PartitioningError, choose_partition, choose_partitions
from .publishing import ItemFailure

SCHEMA_LIST_LIMIT_MAX = 1000


class EventTypeRuntime:
    """An event type ready to publish to: its definition, compiled validator
    and partitioning (the `publishing.PublishTarget` of it)."""

    def __init__(self, event_type: EventType, limits: EventTypeLimits) -> None:
        self.event_type = event_type
        self.name = event_type.name
        self.category = event_type.category.value
        self.version = event_type.schema.version or ""
        self.partition_count = et_rules.partition_count(event_type.default_statistic, limits)
        self._validator: Validator = et_rules.event_validator(event_type)
        self._rng = random.Random()

    def all_valid(self, events: list[dict]) -> bool:
        return self._validator.all_valid(events)

    def validate(self, event: dict) -> str | None:
        return self._validator.validate(event)

    def partitions_of(self, events: list[dict]) -> list[str] | None:
        et = self.event_type
        return choose_partitions(events, et.partition_strategy, et.partition_key_fields, self.category,
                                 self.partition_count)

    def partition_of(self, event: dict) -> str:
        et = self.event_type
        try:
            return choose_partition(event, et.partition_strategy, et.partition_key_fields, self.category,
                                    self.partition_count, self._rng)
        except PartitioningError as e:
            raise ItemFailure(e.detail) from e


class Registry:
    """Event types by name, backed by the metastore."""

    def __init__(self, metastore: Metastore, limits: EventTypeLimits) -> None:
        self._metastore = metastore
        self._limits = limits
        self._runtimes = {name: EventTypeRuntime(from_json(orjson.loads(doc)), limits)
                          for name, doc in metastore.event_types()}
        self.lock = trio.Lock()

    def names(self) -> list[str]:
        return sorted(self._runtimes)

    def has(self, name: str) -> bool:
        return name in self._runtimes

    def runtime(self, name: str) -> EventTypeRuntime:
        try:
            return self._runtimes[name]
        except KeyError:
            raise NotFoundError(f"EventType \"{name}\" does not exist.") from None

    def list(self, *, owning_application: str | None = None, writer: str | None = None) -> list[dict]:
        selected = []
        for runtime in sorted(self._runtimes.values(), key=lambda r: r.name):
            et = runtime.event_type
            if owning_application is not None and et.owning_application != owning_application:
                continue
            if writer is not None and not _lists_writer(et, writer):
                continue
            selected.append(to_json(et))
        return selected

    def get(self, name: str) -> dict:
        return to_json(self.runtime(name).event_type)

    async def create(self, body: object, now: datetime.datetime) -> EventTypeRuntime:
        """Check and store a new event type (the caller holds `lock`)."""
        event_type = et_rules.check_create(parse_event_type(body), now=now, limits=self._limits)
        _check_supported(event_type)
        if event_type.name in self._runtimes:
            raise ConflictError(f"EventType with name {event_type.name} already exists (or wasn't completely "
                                "removed yet)")
        runtime = EventTypeRuntime(event_type, self._limits)
        stored = await trio.to_thread.run_sync(
            self._metastore.insert_event_type, event_type.name, _document(event_type), _schema_row(event_type))
        if not stored:
            raise ConflictError(f"EventType with name {event_type.name} already exists")
        self._runtimes[event_type.name] = runtime
        return runtime

    async def update(self, name: str, body: object, now: datetime.datetime) -> EventTypeRuntime:
        """Check and store a new definition of `name` (the caller holds `lock`)."""
        old = self.runtime(name).event_type
        new = et_rules.check_update(old, parse_event_type(body), now=now, limits=self._limits)
        _check_supported(new)
        runtime = EventTypeRuntime(new, self._limits)
        schema = _schema_row(new) if new.schema.version != old.schema.version else None
        await trio.to_thread.run_sync(self._metastore.update_event_type, name, _document(new), schema)
        self._runtimes[name] = runtime
        return runtime

    async def delete(self, name: str) -> None:
        """Forget `name` durably (the caller holds `lock` and removes the data)."""
        self.runtime(name)
        await trio.to_thread.run_sync(self._metastore.delete_event_type, name)
        del self._runtimes[name]

    async def add_schema(self, name: str, body: object, now: datetime.datetime) -> None:
        """A new schema version for `name`, as an update changing only the
        schema; nothing is stored when the schema did not change (the
        caller holds `lock`)."""
        old = self.runtime(name).event_type
        candidate = replace(old, schema=parse_schema_body(body))
        new = et_rules.check_update(old, candidate, now=now, limits=self._limits)
        if new.schema.version != old.schema.version:
            await trio.to_thread.run_sync(self._metastore.update_event_type, name, _document(new), _schema_row(new))
            self._runtimes[name] = EventTypeRuntime(new, self._limits)

    def find_schema(self, name: str, body: object) -> dict:
        """The newest stored version whose schema equals the one in `body` (as JSON)."""
        self.runtime(name)
        wanted = parse_schema_body(body)
        try:
            wanted_json = orjson.loads(wanted.schema)
        except orjson.JSONDecodeError as e:
            raise UnprocessableError(f"schema is not valid JSON: {e}") from e
        for row in reversed(self._metastore.all_schemas(name)):
            stored = orjson.loads(row.definition)
            if stored["type"] == wanted.type.value and orjson.loads(stored["schema"]) == wanted_json:
                return stored
        raise NotFoundError(f"schema is not found for {name}")

    def compatibility(self, name: str, version: str, body: object) -> dict:
        """Whether the schema in `body` could follow `version` (or `latest`)
        under the event type's compatibility mode; nothing is stored."""
        current = self.runtime(name).event_type
        base = current if version == "latest" else replace(current, schema=schema_from_json(self.schema(name, version)))
        candidate = replace(base, schema=replace(base.schema, schema=parse_schema_text_body(body)))
        answer: dict[str, object] = {"compatible": True, "compatibility_mode": current.compatibility_mode.value}
        try:
            et_rules.check_update(base, candidate, now=base.updated_at or datetime.datetime.now(datetime.UTC),
                                  limits=self._limits)
        except UnprocessableError as e:
            answer.update(compatible=False, error=e.detail)
        answer["validated_against_version"] = base.schema.version
        return answer

    def schemas(self, name: str, limit: int, offset: int) -> tuple[list[dict], int]:
        self.runtime(name)
        if not 1 <= limit <= SCHEMA_LIST_LIMIT_MAX:
            raise InvalidRequestError(f"'limit' parameter should have value between 1 and {SCHEMA_LIST_LIMIT_MAX}")
        if offset < 0:
            raise InvalidRequestError("'offset' parameter can't be lower than 0")
        if offset > PAGE_OFFSET_MAX:
            raise InvalidRequestError(f"'offset' parameter can't be greater than {PAGE_OFFSET_MAX}")
        rows, total = self._metastore.schemas(name, limit, offset)
        return [orjson.loads(row.definition) for row in rows], total

    def schema(self, name: str, version: str) -> dict:
        runtime = self.runtime(name)
        if version == "latest":
            return to_json(runtime.event_type)["schema"]
        parts = version.split(".")
        if len(parts) != 3 or not all(p.isdigit() and p.isascii() for p in parts):
            raise InvalidRequestError(f"Invalid version {version}")
        row = self._metastore.schema(name, *(int(p) for p in parts))
        if row is None:
            raise NotFoundError(f"Version {version} not found for event type {name}")
        return orjson.loads(row.definition)


def _check_supported(event_type: EventType) -> None:
    """Refuse what Nakadi has and this broker does not do, rather than
    accept it and behave differently."""
    if event_type.cleanup_policy is not CleanupPolicy.DELETE:
        raise UnprocessableError(f"cleanup_policy {event_type.cleanup_policy.value} is not supported by this broker: "
                                 "log compaction is not implemented, events are removed by retention only")


def _lists_writer(event_type: EventType, writer: str) -> bool:
    data_type, _, value = writer.partition(":")
    if event_type.authorization is None:
        return True
    return any(w.data_type == data_type and w.value == value for w in event_type.authorization.writers)


def _document(event_type: EventType) -> str:
    return orjson.dumps(to_json(event_type)).decode()


def _schema_row(event_type: EventType) -> SchemaRow:
    version = event_type.schema.version or ""
    major, minor, patch = (int(part) for part in version.split("."))
    return SchemaRow(major, minor, patch, orjson.dumps(to_json(event_type)["schema"]).decode())

