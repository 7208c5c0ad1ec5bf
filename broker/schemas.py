"""JSON Schema as Nakadi handles it: the checks a schema passes when an
event type is created or updated, and the effective schema events are
validated against.

A schema arrives as a string holding JSON. `check_schema` applies Nakadi's
registration rules: strict JSON, a root `type` (if any) of "object", no
external `$ref`, regexes that compile in the validator's engine, a valid
draft-4 schema, no user-defined `metadata` for business types, an
effective schema that compiles, and in `compatible` mode the restricted
meta-schema (no `not`, no `additionalItems`, no unknown keywords).

The effective schema depends on the category: `undefined` uses the user
schema as given; `business` adds the metadata object (and requires it) to
the user's top level; `data` wraps the user schema under `data` next to
`metadata`, `data_type` and `data_op`. In `compatible` mode undeclared
properties and items are forbidden throughout the user schema first.

Pure functions over JSON values; category, mode and cleanup policy are
their lower-case wire values.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .errors import UnprocessableError
from .event_validation import Validator, compile_schema, failures, first_line
from .schema_shapes import (
    COMBINERS,
    SchemaShapeError,
    defines_property,
    read_shape,
    walk,
)

_UUID_PATTERN = "^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$"
_OBJECT_KEYWORDS = ("properties", "required", "minProperties", "maxProperties")
_ARRAY_KEYWORDS = ("minItems", "maxItems", "uniqueItems", "items")


def _restricted_metaschema() -> dict[str, Any]:
    """Draft 4's meta-schema as `compatible` mode narrows it: every schema
    object is closed, and `not` and `additionalItems` are gone."""
    schema: dict[str, Any] = {"$ref": "#"}
    schema_list = {"type": "array", "minItems": 1, "items": schema}
    non_negative = {"type": "integer", "minimum": 0}
    names = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    schema_map = {"type": "object", "additionalProperties": schema}
    simple_types = {"enum": ["array", "boolean", "integer", "null", "number", "object", "string"]}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"}, "$schema": {"type": "string"}, "$ref": {"type": "string"},
            "title": {"type": "string"}, "description": {"type": "string"}, "default": {},
            "multipleOf": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
            "maximum": {"type": "number"}, "exclusiveMaximum": {"type": "boolean"},
            "minimum": {"type": "number"}, "exclusiveMinimum": {"type": "boolean"},
            "maxLength": non_negative, "minLength": non_negative, "pattern": {"type": "string"},
            "items": {"anyOf": [schema, schema_list]},
            "maxItems": non_negative, "minItems": non_negative, "uniqueItems": {"type": "boolean"},
            "maxProperties": non_negative, "minProperties": non_negative, "required": names,
            "additionalProperties": {"anyOf": [{"type": "boolean"}, schema]},
            "definitions": schema_map, "properties": schema_map, "patternProperties": schema_map,
            "dependencies": {"type": "object", "additionalProperties": {"anyOf": [schema, names]}},
            "enum": {"type": "array", "minItems": 1, "uniqueItems": True},
            "type": {"anyOf": [simple_types, {"type": "array", "items": simple_types, "minItems": 1,
                                              "uniqueItems": True}]},
            "format": {"type": "string"},
            "allOf": schema_list, "anyOf": schema_list, "oneOf": schema_list,
        },
        "dependencies": {"exclusiveMaximum": ["maximum"], "exclusiveMinimum": ["minimum"]},
    }


_RESTRICTED = compile_schema(_restricted_metaschema())


def parse_schema(text: str) -> dict[str, Any]:
    """The JSON object in `text`, parsed strictly (no NaN, no duplicate keys)."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise UnprocessableError(f"schema must be a valid json: {e}") from e
    if not isinstance(value, dict):
        raise UnprocessableError("schema must be a valid json: A JSONObject text must begin with '{'")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f'Duplicate key "{key}"')
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON value")


def check_schema(text: str, *, name: str, category: str, compatibility_mode: str,
                 cleanup_policy: str) -> dict[str, Any]:
    """The user schema in `text`, parsed, once it passes every registration
    check. Raises `UnprocessableError` with Nakadi's message otherwise."""
    schema = parse_schema(text)
    if "type" in schema and schema["type"] != "object":
        raise UnprocessableError('"type" of root element in schema can only be "object"')
    _check_references(schema)
    _check_regexes(schema)
    _compile_or_refuse(schema)
    _check_shapes(schema)
    if category == "business" and _declares(schema, "metadata"):
        raise UnprocessableError('"metadata" property is reserved')
    _compile_or_refuse(effective_schema(schema, name=name, category=category,
                                        compatibility_mode=compatibility_mode, cleanup_policy=cleanup_policy))
    if compatibility_mode == "compatible":
        _check_restricted(schema)
    return schema


def _check_references(schema: dict[str, Any]) -> None:
    try:
        for node in walk(schema):
            ref = node.get("$ref")
            if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
                raise UnprocessableError(f"external url reference is not supported: {ref}")
    except SchemaShapeError as e:
        raise UnprocessableError(f"schema must be a valid json-schema: {e}") from e


def _check_shapes(schema: dict[str, Any]) -> None:
    """Refuse what the schema library Nakadi loads schemas with refuses
    beyond draft 4 itself (two of allOf/anyOf/oneOf side by side)."""
    try:
        for node in walk(schema):
            read_shape(node)
    except SchemaShapeError as e:
        raise UnprocessableError(f"schema must be a valid json-schema: {e}") from e


def _check_regexes(schema: dict[str, Any]) -> None:
    for node in walk(schema):
        patterns = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), dict):
            patterns.extend(node["patternProperties"])
        for pattern in patterns:
            try:
                compile_schema({"pattern": pattern})
            except ValueError as e:
                raise UnprocessableError(
                    f'invalid regex pattern in the schema: unsupported or malformed "{pattern}"') from e


def _compile_or_refuse(schema: dict[str, Any]) -> None:
    try:
        compile_schema(schema)
    except ValueError as e:
        raise UnprocessableError(f"schema must be a valid json-schema: {first_line(e)}") from e


def _check_restricted(schema: dict[str, Any]) -> None:
    found = [pair for error in _RESTRICTED.iter_errors(schema) for pair in failures(error, descend=True)]
    if found:
        text = ", ".join(f"Invalid schema found in [{pointer}]: {message}" for pointer, message in found)
        raise UnprocessableError(f"Invalid schema: {text}")


def metadata_schema(name: str, cleanup_policy: str) -> dict[str, Any]:
    """The schema of `metadata` in business and data events of `name`.

    Closed (`additionalProperties: false`), so the fields only enrichment
    may set (received_at, version, published_by) are refused from
    producers; compacted types require a `partition_compaction_key`."""
    properties: dict[str, Any] = {
        "occurred_at": {"type": "string"},
        "eid": {"type": "string", "pattern": _UUID_PATTERN},
        "event_type": {"type": "string", "enum": [name]},
        "partition": {"type": "string"},
        "span_ctx": {"type": "object", "additionalProperties": {"type": "string"}},
        "parent_eids": {"type": "array", "items": {"type": "string", "pattern": _UUID_PATTERN}},
        "flow_id": {"type": "string"},
    }
    required = ["eid", "occurred_at"]
    if cleanup_policy != "delete":
        properties["partition_compaction_key"] = {"type": "string", "minLength": 1}
        required.append("partition_compaction_key")
    return {"type": "object", "additionalProperties": False, "properties": properties, "required": required}


def effective_schema(schema: dict[str, Any], *, name: str, category: str, compatibility_mode: str,
                     cleanup_policy: str) -> dict[str, Any]:
    """The schema events of this event type are validated against (a new
    object; `schema` is not modified)."""
    user = copy.deepcopy(schema)
    if compatibility_mode == "compatible":
        _close(user)
    if category == "business":
        return _with_metadata(user, metadata_schema(name, cleanup_policy))
    if category == "data":
        return _data_envelope(user, metadata_schema(name, cleanup_policy))
    return user


def _with_metadata(schema: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    schema["type"] = "object"
    schema.setdefault("properties", {})["metadata"] = metadata
    required = schema.setdefault("required", [])
    if "metadata" not in required:
        required.append("metadata")
    return schema


def _data_envelope(schema: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    envelope = _with_metadata({}, metadata)
    if "definitions" in schema:
        # The user's "#/definitions/..." references resolve from the envelope's root.
        envelope["definitions"] = schema.pop("definitions")
    envelope["properties"].update({
        "data_type": {"type": "string"},
        "data_op": {"type": "string", "enum": ["C", "U", "D", "S"]},
        "data": schema,
    })
    envelope["additionalProperties"] = False
    envelope["required"].extend(["data_type", "data_op", "data"])
    return envelope


def _close(schema: dict[str, Any]) -> None:
    """Forbid undeclared properties and items in `schema` and the schemas
    it nests, the way Nakadi's compatible mode does (in place)."""
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if _is_unconstrained(schema) or "object" in types or any(k in schema for k in _OBJECT_KEYWORDS):
        schema["additionalProperties"] = False
    if "array" in types or any(k in schema for k in _ARRAY_KEYWORDS):
        schema["additionalItems"] = False
    for keyword in ("definitions", "dependencies", "properties"):
        members = schema.get(keyword)
        if isinstance(members, dict):
            for member in members.values():
                if isinstance(member, dict):
                    _close(member)
    items = schema.get("items")
    for nested in (items if isinstance(items, list) else [items]):
        if isinstance(nested, dict):
            _close(nested)
    for keyword in COMBINERS:
        for nested in schema.get(keyword, []):
            _close(nested)


def _is_unconstrained(schema: dict[str, Any]) -> bool:
    return not any(keyword in schema for keyword in (*_OBJECT_KEYWORDS, *_ARRAY_KEYWORDS, *COMBINERS, "$ref", "type"))


def absent_fields(schema: dict[str, Any], paths: list[str] | tuple[str, ...]) -> list[str]:
    """The dot paths of `paths` that `schema` does not declare."""
    return [path for path in paths if not _declares(schema, path)]


def _declares(schema: dict[str, Any], path: str) -> bool:
    try:
        return defines_property(schema, path)
    except SchemaShapeError as e:
        raise UnprocessableError(f"schema must be a valid json-schema: {e}") from e


def event_validator(schema: dict[str, Any], *, name: str, category: str, compatibility_mode: str,
                    cleanup_policy: str) -> Validator:
    """A compiled validator for events of this event type; build it once
    per schema version and cache it."""
    effective = effective_schema(schema, name=name, category=category, compatibility_mode=compatibility_mode,
                                 cleanup_policy=cleanup_policy)
    return Validator(effective, checks_occurred_at=category != "undefined")
