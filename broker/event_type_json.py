"""An event type's JSON: reading one from a request body or a stored
document, and writing it the way Nakadi serialises it.

Reading follows Nakadi's request binding: a value of the wrong JSON type
or an unknown enum value stops the request at once (400,
`InvalidRequestError`); missing required fields and values out of range
are collected and reported together (422, `InvalidFieldsError`), one line
each: `Field "default_statistic.read_parallelism" at least one reader
expected`. An absent field takes its default, an explicit null is None
(and so "may not be null" when required); unknown fields are ignored;
enum values are read case-insensitively (audience exactly).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from .errors import InvalidFieldsError, InvalidRequestError, UnprocessableError
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

_LABEL_VALUE = re.compile(r"([a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?)?", re.ASCII)


def parse_event_type(body: Any) -> EventType:
    """The event type in a request body (already parsed from JSON).
    Server-set fields (schema version, times) are ignored."""
    return _read(_FieldReader(body), stored=False)


def parse_schema_body(body: Any) -> EventTypeSchema:
    """The `{type, schema}` body of `POST /event-types/{name}/schemas`."""
    return _schema_document(body, stored=False)


def schema_from_json(document: Any) -> EventTypeSchema:
    """A stored schema version, as `to_json` wrote it."""
    return _schema_document(document, stored=True)


def _schema_document(value: Any, *, stored: bool) -> EventTypeSchema:
    reader = _FieldReader(value)
    schema = _read_schema(reader, stored=stored)
    reader.raise_if_invalid()
    assert schema is not None
    return schema


def parse_schema_text_body(body: Any) -> str:
    """The `{schema}` body of a compatibility check."""
    reader = _FieldReader(body)
    text = reader.string("schema", required=True)
    reader.raise_if_invalid()
    assert text is not None
    return text


def from_json(document: Any) -> EventType:
    """The inverse of `to_json`: a stored event type, times and version included."""
    return _read(_FieldReader(document), stored=True)


def _read(reader: _FieldReader, *, stored: bool) -> EventType:
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
        labels=reader.annotations("labels", value_length_max=63, value_pattern=_LABEL_VALUE),
        created_at=reader.time("created_at") if stored else None,
        updated_at=reader.time("updated_at") if stored else None,
    )
    reader.raise_if_invalid()
    return event_type


def _read_schema(reader: _FieldReader | None, *, stored: bool) -> EventTypeSchema | None:
    if reader is None:
        return None
    return EventTypeSchema(
        type=reader.enum("type", SchemaType, required=True),
        schema=reader.string("schema", required=True),
        version=reader.string("version") if stored else None,
        created_at=reader.time("created_at") if stored else None,
    )


def _read_statistic(reader: _FieldReader | None) -> Statistic | None:
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


def _read_retention(options: _FieldReader | None) -> int | None:
    return None if options is None else options.integer("retention_time")


def _read_authorization(reader: _FieldReader | None) -> Authorization | None:
    if reader is None:
        return None
    lists = {}
    for role in ("admins", "readers", "writers"):
        entries = reader.children(role, required=True, at_least_one=True)
        lists[role] = tuple(AuthorizationAttribute(entry.string("data_type", required=True),
                                                   entry.string("value", required=True)) for entry in entries)
    return Authorization(**lists)


def _read_owner_selector(reader: _FieldReader | None) -> OwnerSelector | None:
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
    document["updated_at"] = _time_json(et.updated_at)
    document["created_at"] = _time_json(et.created_at)
    return document


def _schema_json(schema: EventTypeSchema) -> dict[str, Any]:
    return {"type": schema.type.value, "schema": schema.schema, "version": schema.version,
            "created_at": _time_json(schema.created_at)}


def _statistic_json(statistic: Statistic) -> dict[str, int]:
    return {"messages_per_minute": statistic.messages_per_minute, "message_size": statistic.message_size,
            "read_parallelism": statistic.read_parallelism, "write_parallelism": statistic.write_parallelism}


def _authorization_json(authorization: Authorization) -> dict[str, list[dict[str, str]]]:
    return {role: [{"data_type": a.data_type, "value": a.value} for a in getattr(authorization, role)]
            for role in ("admins", "readers", "writers")}


def _time_json(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_E = TypeVar("_E", bound=StrEnum)
_ABSENT = object()
_KEY_RULES = (
    (re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[^/]*", re.ASCII),
     "Key name should be an optional lowercase domain name with path"),
    (re.compile(r"([-.a-z0-9]{0,253}/)?[^/]*", re.ASCII), "Key prefix cannot be more than 253 characters."),
    (re.compile(r"([-.a-z0-9]+/)?[^/]{0,63}", re.ASCII), "Key name cannot be more than 63 characters."),
    (re.compile(r"([^/]+/)?[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?", re.ASCII),
     "Key name should start and end with a letter or a digit"),
)


class _FieldReader:
    """The fields of one JSON object; nested readers share the problem list."""

    def __init__(self, value: Any, prefix: str = "", problems: list[str] | None = None) -> None:
        if not isinstance(value, Mapping):
            raise InvalidRequestError(f"{_describe(prefix.rstrip('.') or 'body')} must be a JSON object")
        self._object = value
        self._prefix = prefix
        self._problems = [] if problems is None else problems

    def invalid(self, name: str, message: str) -> None:
        self._problems.append(f'Field "{self._prefix}{name}" {message}')

    def raise_if_invalid(self) -> None:
        if self._problems:
            raise InvalidFieldsError("".join(f"{problem}\n" for problem in self._problems))

    def _value(self, name: str, json_type: type | tuple[type, ...], default: Any, required: bool) -> Any:
        value = self._object.get(name, _ABSENT)
        if value is _ABSENT:
            value = default
        if value is None:
            if required:
                self.invalid(name, "may not be null")
            return None
        if value is not default and (isinstance(value, bool) or not isinstance(value, json_type)):
            raise InvalidRequestError(f"{_describe(self._prefix + name)} has the wrong JSON type")
        return value

    def string(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        return self._value(name, str, default, required)

    def integer(self, name: str, *, required: bool = False, minimum: tuple[int, str] | None = None) -> int | None:
        value = self._value(name, int, None, required)
        if value is not None and minimum is not None and value < minimum[0]:
            self.invalid(name, minimum[1])
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        values = self._value(name, list, (), False) or ()
        if not all(isinstance(value, str) for value in values):
            raise InvalidRequestError(f"{_describe(self._prefix + name)} must be a list of strings")
        return tuple(values)

    def enum(self, name: str, enum: type[_E], *, required: bool = False, default: _E | None = None,
             exact: bool = False) -> _E | None:
        value = self._value(name, str, default, required)
        return value if value is None or value is default else _enum_value(enum, value, exact)

    def enum_list(self, name: str, enum: type[_E]) -> tuple[_E, ...]:
        values = self._value(name, list, (), True)
        if values is None:
            return ()
        if not all(isinstance(value, str) for value in values):
            raise InvalidRequestError(f"{_describe(self._prefix + name)} must be a list of strings")
        return tuple(_enum_value(enum, value, exact=False) for value in values)

    def time(self, name: str) -> datetime | None:
        value = self._value(name, str, None, False)
        try:
            return None if value is None else datetime.fromisoformat(value)
        except ValueError as e:
            raise InvalidRequestError(f"{_describe(self._prefix + name)} is not an RFC 3339 date-time") from e

    def child(self, name: str, *, required: bool = False) -> _FieldReader | None:
        value = self._value(name, Mapping, None, required)
        return None if value is None else _FieldReader(value, f"{self._prefix}{name}.", self._problems)

    def children(self, name: str, *, required: bool = False, at_least_one: bool = False) -> list[_FieldReader]:
        values = self._value(name, list, None, required)
        if values is None:
            return []
        if at_least_one and not values:
            self.invalid(name, "must contain at least one attribute")
        return [_FieldReader(value, f"{self._prefix}{name}[{index}].", self._problems)
                for index, value in enumerate(values)]

    def annotations(self, name: str, *, value_length_max: int,
                    value_pattern: re.Pattern[str] | None = None) -> MappingProxyType[str, str] | None:
        """A string map with Kubernetes-style keys (annotations, labels)."""
        values = self._value(name, Mapping, None, False)
        if values is None:
            return None
        if not all(isinstance(v, str) for v in values.values()):
            raise InvalidRequestError(f"{_describe(self._prefix + name)} must map strings to strings")
        for key, value in values.items():
            for problem in _key_problems(key):
                self.invalid(name, problem)
            if len(value) > value_length_max:
                self.invalid(f"{name}[{key}]", f"size must be between 0 and {value_length_max}")
            if value_pattern is not None and not value_pattern.fullmatch(value):
                self.invalid(f"{name}[{key}]", "Should contain only allowed symbols")
        return MappingProxyType(dict(values))


def _key_problems(key: str) -> list[str]:
    if not key:
        return ["Key cannot be empty"]
    return [message for pattern, message in _KEY_RULES if not pattern.fullmatch(key)]


def _enum_value(enum: type[_E], value: str, exact: bool) -> _E:
    try:
        return enum(value if exact else value.lower())
    except ValueError:
        possible = ", ".join(member.value for member in enum)
        raise InvalidRequestError(f"Illegal enum value: '{value}'. Possible values: [{possible}]") from None


def _describe(field: str) -> str:
    return "The request body" if field == "body" else f'Field "{field}"'
