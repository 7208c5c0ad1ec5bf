"""An event type's JSON: reading one from a request body or a stored
document, and writing it the way Nakadi serialises it.

Reading follows Nakadi's request binding (`json_fields.FieldReader`): a
value of the wrong JSON type or an unknown enum value stops the request at
once (400); missing required fields and values out of range are collected
and reported together (422), one line each: `Field
"default_statistic.read_parallelism" at least one reader expected`. An
absent field takes its default, an explicit null is None (and so "may not
be null" when required); unknown fields are ignored; enum values are read
case-insensitively (audience exactly).
"""

from __future__ import annotations

from typing import Any

from .event_types import (
    NAME_LENGTH_MAX,
    NAME_PATTERN,
    Audience,
    Authorization,
    AuthorizationAttribute,
    Category,
    CleanupPolicy,
    CompatibilityMode,
    EnrichmentStrategy,
    EventType,
    EventTypeSchema,
    OwnerSelector,
    OwnerSelectorType,
    SchemaType,
    Statistic,
)
from .json_fields import LABEL_VALUE, FieldReader, time_json


def parse_event_type(body: Any) -> EventType:
    """The event type in a request body (already parsed from JSON).
    Server-set fields (schema version, times) are ignored."""
    return _read(FieldReader(body), stored=False)


def parse_schema_body(body: Any) -> EventTypeSchema:
    """The `{type, schema}` body of `POST /event-types/{name}/schemas`."""
    return _schema_document(body, stored=False)


def schema_from_json(document: Any) -> EventTypeSchema:
    """A stored schema version, as `to_json` wrote it."""
    return _schema_document(document, stored=True)


def _schema_document(value: Any, *, stored: bool) -> EventTypeSchema:
    reader = FieldReader(value)
    schema = _read_schema(reader, stored=stored)
    reader.raise_if_invalid()
    assert schema is not None
    return schema


def parse_schema_text_body(body: Any) -> str:
    """The `{schema}` body of a compatibility check."""
    reader = FieldReader(body)
    text = reader.string("schema", required=True)
    reader.raise_if_invalid()
    assert text is not None
    return text


def from_json(document: Any) -> EventType:
    """The inverse of `to_json`: a stored event type, times and version included."""
    return _read(FieldReader(document), stored=True)


def _read(reader: FieldReader, *, stored: bool) -> EventType:
    name = reader.string("name", required=True)
    if name is not None and not NAME_PATTERN.fullmatch(name):
        reader.invalid("name", "format not allowed")
    if name is not None and not 1 <= len(name) <= NAME_LENGTH_MAX:
        reader.invalid("name", "the length of the name must be >= 1 and <= 255")
    event_type = EventType(
        name=name,
        owning_application=reader.string("owning_application", required=True),
        category=reader.enum("category", Category, required=True),
        schema=_read_schema(reader.child("schema", required=True), stored=stored),
        enrichment_strategies=reader.enum_list("enrichment_strategies", EnrichmentStrategy),
        partition_strategy=reader.string("partition_strategy", default="random"),
        partition_key_fields=reader.strings("partition_key_fields"),
        compatibility_mode=reader.enum("compatibility_mode", CompatibilityMode, required=True,
                                       default=CompatibilityMode.FORWARD),
        cleanup_policy=reader.enum("cleanup_policy", CleanupPolicy, required=True, default=CleanupPolicy.DELETE),
        default_statistic=_read_statistic(reader.child("default_statistic")),
        retention_ms=_read_retention(reader.child("options")),
        authorization=_read_authorization(reader.child("authorization")),
        audience=reader.enum("audience", Audience, exact=True),
        ordering_key_fields=reader.strings("ordering_key_fields"),
        ordering_instance_ids=reader.strings("ordering_instance_ids"),
        event_owner_selector=_read_owner_selector(reader.child("event_owner_selector")),
        annotations=reader.annotations("annotations", value_length_max=1000),
        labels=reader.annotations("labels", value_length_max=63, value_pattern=LABEL_VALUE),
        created_at=reader.time("created_at") if stored else None,
        updated_at=reader.time("updated_at") if stored else None,
    )
    reader.raise_if_invalid()
    return event_type


def _read_schema(reader: FieldReader | None, *, stored: bool) -> EventTypeSchema | None:
    if reader is None:
        return None
    return EventTypeSchema(
        type=reader.enum("type", SchemaType, required=True),
        schema=reader.string("schema", required=True),
        version=reader.string("version") if stored else None,
        created_at=reader.time("created_at") if stored else None,
    )


def _read_statistic(reader: FieldReader | None) -> Statistic | None:
    if reader is None:
        return None
    return Statistic(
        messages_per_minute=reader.integer("messages_per_minute", required=True,
                                           minimum=(0, "can't be less then zero")),
        message_size=reader.integer("message_size", required=True, minimum=(1, "can't be less then 1")),
        read_parallelism=reader.integer("read_parallelism", required=True,
                                        minimum=(1, "at least one reader expected")),
        write_parallelism=reader.integer("write_parallelism", required=True,
                                         minimum=(1, "at least one writer expected")),
    )


def _read_retention(options: FieldReader | None) -> int | None:
    return None if options is None else options.integer("retention_time")


def _read_authorization(reader: FieldReader | None) -> Authorization | None:
    if reader is None:
        return None
    lists = {}
    for role in ("admins", "readers", "writers"):
        entries = reader.children(role, required=True, at_least_one=True)
        lists[role] = tuple(AuthorizationAttribute(entry.string("data_type", required=True),
                                                   entry.string("value", required=True)) for entry in entries)
    return Authorization(**lists)


def _read_owner_selector(reader: FieldReader | None) -> OwnerSelector | None:
    if reader is None:
        return None
    type_ = reader.enum("type", OwnerSelectorType, required=True)
    name = reader.string("name", required=True)
    if name == "":
        reader.invalid("name", "the length of the name must be >= 1")
    # Nakadi requires a value except for `metadata`, which must have none.
    value = reader.string("value", required=type_ is not OwnerSelectorType.METADATA)
    return OwnerSelector(type_, name, value)


def to_json(event_type: EventType) -> dict[str, Any]:
    """The event type as Nakadi serialises it: snake_case, lower-case enums,
    times in UTC with milliseconds, the schema as a string; `audience` and
    `event_owner_selector` left out when absent, other absent objects null."""
    et = event_type
    document: dict[str, Any] = {
        "name": et.name,
        "owning_application": et.owning_application,
        "category": et.category.value,
        "enrichment_strategies": [strategy.value for strategy in et.enrichment_strategies],
        "partition_strategy": et.partition_strategy,
        "partition_key_fields": list(et.partition_key_fields),
        "cleanup_policy": et.cleanup_policy.value,
        "ordering_key_fields": list(et.ordering_key_fields),
        "ordering_instance_ids": list(et.ordering_instance_ids),
        "schema": _schema_json(et.schema),
        "default_statistic": None if et.default_statistic is None else _statistic_json(et.default_statistic),
        "options": {"retention_time": et.retention_ms},
        "authorization": None if et.authorization is None else _authorization_json(et.authorization),
        "annotations": None if et.annotations is None else dict(et.annotations),
        "labels": None if et.labels is None else dict(et.labels),
        "compatibility_mode": et.compatibility_mode.value,
    }
    if et.audience is not None:
        document["audience"] = et.audience.value
    if et.event_owner_selector is not None:
        selector = et.event_owner_selector
        document["event_owner_selector"] = {"type": selector.type.value, "name": selector.name,
                                            "value": selector.value}
    document["updated_at"] = time_json(et.updated_at)
    document["created_at"] = time_json(et.created_at)
    return document


def _schema_json(schema: EventTypeSchema) -> dict[str, Any]:
    return {"type": schema.type.value, "schema": schema.schema, "version": schema.version,
            "created_at": time_json(schema.created_at)}


def _statistic_json(statistic: Statistic) -> dict[str, int]:
    return {"messages_per_minute": statistic.messages_per_minute, "message_size": statistic.message_size,
            "read_parallelism": statistic.read_parallelism, "write_parallelism": statistic.write_parallelism}


def _authorization_json(authorization: Authorization) -> dict[str, list[dict[str, str]]]:
    return {role: [{"data_type": a.data_type, "value": a.value} for a in getattr(authorization, role)]
            for role in ("admins", "readers", "writers")}
