"""The event-type registry's domain: the `EventType` model, the rules a
definition must satisfy to be created (`check_create`) and those an
update must satisfy to replace it (`check_update`), and what follows from
a definition (its partition count, its event validator).

Nothing here stores, fetches or reads a clock: the caller passes the
stored definition and the time, and persists what comes back. Reading and
writing the JSON form is `event_type_json`'s job. A definition breaking a
rule is a 422 (`UnprocessableError`) with Nakadi's message; the checks run
in Nakadi's order, so the first broken rule is the one Nakadi reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from . import schemas
from .errors import UnprocessableError
from .event_validation import Validator
from .schema_evolution import FIRST_VERSION, evolve

NAME_PATTERN = re.compile(r"[a-zA-Z][-0-9a-zA-Z_]*(\.[0-9a-zA-Z][-0-9a-zA-Z_]*)*", re.ASCII)
NAME_LENGTH_MAX = 255
PARTITION_STRATEGIES = ("hash", "user_defined", "random")


class Category(StrEnum):
    UNDEFINED = "undefined"
    DATA = "data"
    BUSINESS = "business"


class CompatibilityMode(StrEnum):
    FORWARD = "forward"
    COMPATIBLE = "compatible"
    NONE = "none"


class CleanupPolicy(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"
    COMPACT_AND_DELETE = "compact_and_delete"


class EnrichmentStrategy(StrEnum):
    METADATA_ENRICHMENT = "metadata_enrichment"


class SchemaType(StrEnum):
    JSON_SCHEMA = "json_schema"
    AVRO_SCHEMA = "avro_schema"


class Audience(StrEnum):
    COMPONENT_INTERNAL = "component-internal"
    BUSINESS_UNIT_INTERNAL = "business-unit-internal"
    COMPANY_INTERNAL = "company-internal"
    EXTERNAL_PARTNER = "external-partner"
    EXTERNAL_PUBLIC = "external-public"


class OwnerSelectorType(StrEnum):
    PATH = "path"
    STATIC = "static"
    METADATA = "metadata"


@dataclass(frozen=True)
class EventTypeSchema:
    """A schema version. `version` and `created_at` are set by the registry
    (None in a request)."""

    type: SchemaType
    schema: str
    version: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Statistic:
    """`default_statistic`: the expected traffic, which sizes the partitions."""

    messages_per_minute: int
    message_size: int
    read_parallelism: int
    write_parallelism: int


@dataclass(frozen=True)
class AuthorizationAttribute:
    data_type: str
    value: str


@dataclass(frozen=True)
class Authorization:
    admins: tuple[AuthorizationAttribute, ...]
    readers: tuple[AuthorizationAttribute, ...]
    writers: tuple[AuthorizationAttribute, ...]


@dataclass(frozen=True)
class OwnerSelector:
    """`event_owner_selector`: where each event's owner comes from."""

    type: OwnerSelectorType
    name: str
    value: str | None


@dataclass(frozen=True)
class EventTypeLimits:
    """Configured bounds: retention of events and the partition count."""

    retention_ms_default: int = 172_800_000
    retention_ms_min: int = 10_800_000
    retention_ms_max: int = 345_600_000
    partitions_default: int = 1
    partitions_max: int = 8


_EMPTY: MappingProxyType[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class EventType:
    """An event type. In a request, fields the client left out are None
    where Nakadi keeps the stored value on update (`default_statistic`,
    `retention_ms`, `annotations`, `labels`); a stored event type has them
    all set, and its schema version and times."""

    name: str
    owning_application: str
    category: Category
    schema: EventTypeSchema
    enrichment_strategies: tuple[EnrichmentStrategy, ...] = ()
    partition_strategy: str = "random"
    partition_key_fields: tuple[str, ...] = ()
    compatibility_mode: CompatibilityMode = CompatibilityMode.FORWARD
    cleanup_policy: CleanupPolicy = CleanupPolicy.DELETE
    default_statistic: Statistic | None = None
    retention_ms: int | None = None
    authorization: Authorization | None = None
    audience: Audience | None = None
    ordering_key_fields: tuple[str, ...] = ()
    ordering_instance_ids: tuple[str, ...] = ()
    event_owner_selector: OwnerSelector | None = None
    annotations: MappingProxyType[str, str] | None = None
    labels: MappingProxyType[str, str] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


def is_valid_name(name: str) -> bool:
    """Whether `name` may name an event type: ASCII letters, digits, `-`,
    `_`, dot-separated, starting with a letter, at most 255 characters.
    Such a name holds no path separator, no `..` and no NUL."""
    return 1 <= len(name) <= NAME_LENGTH_MAX and NAME_PATTERN.fullmatch(name) is not None


def partition_count(statistic: Statistic | None, limits: EventTypeLimits = EventTypeLimits()) -> int:
    """How many partitions an event type with `default_statistic` gets."""
    if statistic is None:
        return limits.partitions_default
    return min(max(statistic.read_parallelism, statistic.write_parallelism), limits.partitions_max)


def event_validator(event_type: EventType) -> Validator:
    """The compiled validator for events of `event_type`'s current schema;
    build it once per schema version."""
    et = event_type
    return schemas.event_validator(schemas.parse_schema(et.schema.schema), name=et.name, category=et.category,
                                   compatibility_mode=et.compatibility_mode, cleanup_policy=et.cleanup_policy)


def check_create(event_type: EventType, *, now: datetime, limits: EventTypeLimits = EventTypeLimits()) -> EventType:
    """`event_type` (a parsed request) as it is stored when created at `now`:
    schema version 1.0.0, times set, defaults filled in. Raises
    `UnprocessableError` for the first rule it breaks."""
    et, now = event_type, _to_millis(now)
    _check_retention(et.retention_ms, limits)
    _check_schema(et)
    _check_cleanup_policy(et)
    _check_enrichment(et)
    _check_partitioning(et)
    _check_authorization(et.authorization)
    _check_owner_selector(et.event_owner_selector)
    return replace(
        et, schema=replace(et.schema, version=FIRST_VERSION, created_at=now),
        retention_ms=limits.retention_ms_default if et.retention_ms is None else et.retention_ms,
        annotations=_EMPTY if et.annotations is None else et.annotations,
        labels=_EMPTY if et.labels is None else et.labels,
        created_at=now, updated_at=now)


def check_update(old: EventType, new: EventType, *, now: datetime, limits: EventTypeLimits = EventTypeLimits(),
                 is_admin: bool = False, is_event_type_admin: bool = False) -> EventType:
    """The event type stored after `new` (a parsed PUT body) replaces `old`
    (stored) at `now`: fields left out of `new` keep their stored value, and
    the schema gets the version its change calls for. Raises
    `UnprocessableError` for the first rule the update breaks.

    `is_admin` is a Nakadi admin, who may change the partition strategy and
    compatibility mode freely and is not held to the retention bounds or
    the owner selector; `is_event_type_admin` (an admin of this event
    type) may change the compatibility mode freely."""
    now = _to_millis(now)
    if not is_admin:
        _check_retention(new.retention_ms, limits)
        _check_owner_selector_kept(old.event_owner_selector, new.event_owner_selector)
    _check_owner_selector(new.event_owner_selector)
    if old.authorization is not None and new.authorization is None:
        raise UnprocessableError("Changing authorization object to `null` is not possible due to existing one")
    _check_authorization(new.authorization)
    if new.name != old.name:
        raise UnprocessableError("path does not match resource name")
    _check_cleanup_policy_change(old, new)
    _check_schema(new)
    if old.audience is not None and new.audience is None:
        raise UnprocessableError("event audience must not be set back to null")
    _check_partitioning(new)
    _check_evolution(old, new, is_admin=is_admin, may_change_mode=is_admin or is_event_type_admin)
    merged = replace(
        new, schema=_evolved_schema(old, new, now), default_statistic=_kept_statistic(old, new),
        retention_ms=old.retention_ms if new.retention_ms is None else new.retention_ms,
        annotations=old.annotations if new.annotations is None else new.annotations,
        labels=old.labels if new.labels is None else new.labels,
        created_at=old.created_at, updated_at=now)
    assert partition_count(merged.default_statistic, limits) == partition_count(old.default_statistic, limits)
    return merged


def _to_millis(moment: datetime) -> datetime:
    # Stored times have Nakadi's precision, so a definition reads back equal.
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _check_retention(retention_ms: int | None, limits: EventTypeLimits) -> None:
    if retention_ms is not None and retention_ms > limits.retention_ms_max:
        raise UnprocessableError(f'Field "options.retention_time" can not be more than {limits.retention_ms_max}')
    if retention_ms is not None and retention_ms < limits.retention_ms_min:
        raise UnprocessableError(f'Field "options.retention_time" can not be less than {limits.retention_ms_min}')


def _check_schema(et: EventType) -> None:
    if et.schema.type is not SchemaType.JSON_SCHEMA:
        raise UnprocessableError(f"schema type {et.schema.type} is not supported")
    user = schemas.check_schema(et.schema.schema, name=et.name, category=et.category,
                                compatibility_mode=et.compatibility_mode, cleanup_policy=et.cleanup_policy)
    effective = schemas.effective_schema(user, name=et.name, category=et.category,
                                         compatibility_mode=et.compatibility_mode, cleanup_policy=et.cleanup_policy)
    selector = et.event_owner_selector
    if selector is not None and selector.type is OwnerSelectorType.PATH:
        _require_fields("event_owner_selector.value", (selector.value,), effective)
    if et.ordering_instance_ids and not et.ordering_key_fields:
        raise UnprocessableError(
            "`ordering_instance_ids` field can not be defined without defining `ordering_key_fields`")
    _require_fields("ordering_key_fields", et.ordering_key_fields, effective)
    _require_fields("ordering_instance_ids", et.ordering_instance_ids, effective)


def _require_fields(field_name: str, paths: tuple[str, ...], effective: dict) -> None:
    absent = schemas.absent_fields(effective, paths)
    if absent:
        raise UnprocessableError(f"{field_name} [{', '.join(absent)}] absent in schema")


def _check_cleanup_policy(et: EventType) -> None:
    if et.category is Category.UNDEFINED and et.cleanup_policy is not CleanupPolicy.DELETE:
        raise UnprocessableError("cleanup_policy 'compact' and 'compact_and_delete' is not available "
                                 "for 'undefined' event type category")


def _check_cleanup_policy_change(old: EventType, new: EventType) -> None:
    _check_cleanup_policy(new)
    allowed = {old.cleanup_policy} | ({CleanupPolicy.COMPACT_AND_DELETE}
                                      if old.cleanup_policy is CleanupPolicy.DELETE else set())
    if new.cleanup_policy not in allowed:
        raise UnprocessableError(f"Invalid cleanup_policy change: {old.cleanup_policy.name} "
                                 f"cannot be changed to {new.cleanup_policy.name}")


def _check_enrichment(et: EventType) -> None:
    if et.category is Category.UNDEFINED and et.enrichment_strategies:
        raise UnprocessableError("must not define enrichment strategy for undefined event type")
    if len(set(et.enrichment_strategies)) != len(et.enrichment_strategies):
        raise UnprocessableError("enrichment strategies must not contain duplicated entries")
    if et.category is not Category.UNDEFINED and EnrichmentStrategy.METADATA_ENRICHMENT not in et.enrichment_strategies:
        raise UnprocessableError("must define metadata enrichment strategy")


def _check_partitioning(et: EventType) -> None:
    if et.partition_strategy is None:
        raise UnprocessableError("partition strategy must not be null")
    if et.partition_strategy not in PARTITION_STRATEGIES:
        raise UnprocessableError(f"partition strategy does not exist: {et.partition_strategy}")
    if et.partition_strategy == "hash" and not et.partition_key_fields:
        raise UnprocessableError("partition_key_fields field should be set for partition strategy 'hash'")
    if et.partition_strategy == "user_defined" and et.category is Category.UNDEFINED:
        raise UnprocessableError("'user_defined' partition strategy can't be used for EventType of category "
                                 "'undefined'")


def _check_authorization(authorization: Authorization | None) -> None:
    if authorization is None:
        return
    problems = []
    for property_name, attributes in (("ADMIN", authorization.admins), ("READ", authorization.readers),
                                      ("WRITE", authorization.writers)):
        duplicates = list(dict.fromkeys(a for i, a in enumerate(attributes) if a in attributes[:i]))
        if duplicates:
            listed = ", ".join(f"{a.data_type}:{a.value}" for a in duplicates)
            problems.append(f"authorization property '{property_name}' contains duplicated attribute(s): {listed}")
    if problems:
        raise UnprocessableError("; ".join(problems))


def _check_owner_selector(selector: OwnerSelector | None) -> None:
    if selector is not None and selector.type is OwnerSelectorType.METADATA and selector.value is not None:
        raise UnprocessableError("event_owner_selector specifying value for type 'metadata' is not supported")


def _check_owner_selector_kept(old: OwnerSelector | None, new: OwnerSelector | None) -> None:
    if old is not None and new is None:
        raise UnprocessableError("event_owner_selector can't be set back to null")
    if old is not None and new != old:
        raise UnprocessableError(f"event_owner_selector must not be changed, original: {_selector_text(old)}, "
                                 f"updated: {_selector_text(new)}")


def _selector_text(selector: OwnerSelector) -> str:
    return f"{{ type: {selector.type.name}, name: {selector.name}, value: {selector.value} }}"


_MODE_STEPS = {
    CompatibilityMode.COMPATIBLE: {CompatibilityMode.COMPATIBLE},
    CompatibilityMode.FORWARD: {CompatibilityMode.FORWARD, CompatibilityMode.COMPATIBLE},
    CompatibilityMode.NONE: {CompatibilityMode.NONE, CompatibilityMode.FORWARD},
}


def _check_evolution(old: EventType, new: EventType, *, is_admin: bool, may_change_mode: bool) -> None:
    category_changed = new.category is not old.category
    enrichment_changed = new.enrichment_strategies != old.enrichment_strategies
    others = []
    if not may_change_mode and new.compatibility_mode not in _MODE_STEPS[old.compatibility_mode]:
        others.append("changing compatibility_mode is not allowed")
    if not is_admin and old.partition_strategy != "random" and new.partition_strategy != old.partition_strategy:
        others.append("changing partition_strategy is only allowed if the original strategy was 'random'")
    if category_changed:
        # The one category change allowed: undefined to business, which also adds enrichment.
        if others or not _is_business_upgrade(old, new):
            raise UnprocessableError("Category change is allowed only from 'undefined' to 'business'. "
                                     "'enrichment_strategies' should be properly set as well")
        return
    if enrichment_changed:
        others.append("changing enrichment_strategies is not allowed")
    if others:
        raise UnprocessableError("; ".join(others))


def _is_business_upgrade(old: EventType, new: EventType) -> bool:
    return (old.category is Category.UNDEFINED and new.category is Category.BUSINESS
            and EnrichmentStrategy.METADATA_ENRICHMENT in new.enrichment_strategies
            and new.compatibility_mode is not CompatibilityMode.COMPATIBLE)


def _evolved_schema(old: EventType, new: EventType, now: datetime) -> EventTypeSchema:
    version = evolve(old.schema.schema, new.schema.schema, old_mode=old.compatibility_mode,
                     new_mode=new.compatibility_mode, version=old.schema.version)
    if version == old.schema.version:
        return old.schema
    return EventTypeSchema(new.schema.type, new.schema.schema, version, now)


def _kept_statistic(old: EventType, new: EventType) -> Statistic | None:
    if new.default_statistic is None:
        return old.default_statistic
    if old.default_statistic is None or _parallelism(new.default_statistic) != _parallelism(old.default_statistic):
        raise UnprocessableError("default statistics must not be changed")
    return new.default_statistic


def _parallelism(statistic: Statistic) -> tuple[int, int]:
    # Nakadi compares statistics by their parallelism only.
    return statistic.read_parallelism, statistic.write_parallelism
