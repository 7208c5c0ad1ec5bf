"""Schema evolution: what changed between two versions of a user schema,
whether the event type's compatibility mode allows it, and the next
semantic version.

Theory of operation. Both schemas are read as everit shapes
(`schema_shapes`) and walked side by side from the root; each difference
found is a `SchemaChange` of one of Nakadi's kinds at a JSON pointer. Two
shapes of different kinds are a type change (an empty schema becoming any
other kind is a narrowing, except that an empty schema and an empty object
compare field by field), and nothing below them is compared. Same kinds
compare their annotations and then their own keywords only; keywords not
listed here (formats, patternProperties, exclusive limits) are not
compared, as in Nakadi.

Each kind has a level (major, minor, patch) that may differ between
`forward` (also used for `none`) and `compatible` mode; the level of an
update is that of its most severe change, or patch when the text differs
without any change found. The mode of the stored event type decides:
`none` allows everything, `forward` and `compatible` refuse major changes,
and the step from `forward` to `compatible` allows only annotation changes,
added properties, extended `required` and closing additional
properties/items. An identical text makes no new version.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from .errors import UnprocessableError
from .schema_shapes import Shape, read_shape, resolve_ref
from .schemas import parse_schema

FIRST_VERSION = "1.0.0"


class Level(IntEnum):
    """How big a change is; larger is more severe."""

    NO_CHANGES = 0
    PATCH = 1
    MINOR = 2
    MAJOR = 3


_M, _m, _P = Level.MAJOR, Level.MINOR, Level.PATCH
# kind: (level in forward and none mode, level in compatible mode, refusal text)
_KINDS: dict[str, tuple[Level, Level, str]] = {
    "ID_CHANGED": (_M, _M, "change not allowed"),
    "DESCRIPTION_CHANGED": (_P, _P, ""),
    "TITLE_CHANGED": (_P, _P, ""),
    "PROPERTIES_ADDED": (_m, _m, ""),
    "SCHEMA_REMOVED": (_M, _M, "change not allowed"),
    "TYPE_CHANGED": (_M, _M, "schema types must be the same"),
    "TYPE_NARROWED": (_m, _M, "schema types cannot be narrowed"),
    "NUMBER_OF_ITEMS_CHANGED": (_M, _M, "the number of schema items cannot be changed"),
    "PROPERTY_REMOVED": (_M, _M, "schema properties cannot be removed"),
    "DEPENDENCY_ARRAY_CHANGED": (_M, _M, "schema dependencies array cannot be changed"),
    "DEPENDENCY_SCHEMA_CHANGED": (_M, _M, "schema dependencies cannot be changed"),
    "COMPOSITION_METHOD_CHANGED": (_M, _M, "schema composition method changed"),
    "ATTRIBUTE_VALUE_CHANGED": (_M, _M, "change to attribute value not allowed"),
    "ENUM_ARRAY_CHANGED": (_M, _M, "enum array changed"),
    "SUB_SCHEMA_CHANGED": (_M, _M, "sub schema changed"),
    "REQUIRED_ARRAY_CHANGED": (_M, _M, "required array changed"),
    "REQUIRED_ARRAY_EXTENDED": (_m, _M, "required array changed"),
    "ADDITIONAL_PROPERTIES_CHANGED": (_M, _M, "change not allowed"),
    "ADDITIONAL_PROPERTIES_NARROWED": (_m, _M, "change not allowed"),
    "ADDITIONAL_ITEMS_CHANGED": (_M, _M, "change not allowed"),
}
_FORWARD_TO_COMPATIBLE = frozenset({"DESCRIPTION_CHANGED", "TITLE_CHANGED", "PROPERTIES_ADDED",
                                    "REQUIRED_ARRAY_EXTENDED", "ADDITIONAL_PROPERTIES_CHANGED",
                                    "ADDITIONAL_ITEMS_CHANGED"})


@dataclass(frozen=True)
class SchemaChange:
    """One difference: Nakadi's name for its kind and where it is."""

    kind: str
    path: str

    def level(self, compatibility_mode: str) -> Level:
        forward, compatible = _KINDS[self.kind][:2]
        return compatible if compatibility_mode == "compatible" else forward

    def describe(self) -> str:
        return f"{self.path}: {_KINDS[self.kind][2]}"


def evolve(old_text: str, new_text: str, *, old_mode: str, new_mode: str, version: str) -> str:
    """The version the schema `new_text` gets when it replaces `old_text`
    (version `version`) on an event type whose mode goes from `old_mode` to
    `new_mode`; `version` itself when the text is unchanged. Raises
    `UnprocessableError` naming the changes the mode does not allow."""
    changes = schema_changes(parse_schema(old_text), parse_schema(new_text))
    level = max((change.level(old_mode) for change in changes), default=Level.NO_CHANGES)
    if level is Level.NO_CHANGES and old_text != new_text:
        level = Level.PATCH
    if old_mode == "forward" and new_mode == "compatible":
        refused = [change for change in changes if change.kind not in _FORWARD_TO_COMPATIBLE]
    elif old_mode != "none" and level is Level.MAJOR:
        refused = [change for change in changes if change.level(old_mode) is Level.MAJOR]
    else:
        refused = []
    if refused:
        raise UnprocessableError("Invalid schema: " + ", ".join(change.describe() for change in refused))
    return bump(version, level)


def bump(version: str, level: Level) -> str:
    """`version` ("major.minor.patch") raised by `level`."""
    major, minor, patch = (int(part) for part in version.split("."))
    if level is Level.MAJOR:
        return f"{major + 1}.0.0"
    if level is Level.MINOR:
        return f"{major}.{minor + 1}.0"
    if level is Level.PATCH:
        return f"{major}.{minor}.{patch + 1}"
    return version


def schema_changes(old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    """Every difference from schema `old` to schema `new`, in Nakadi's order.
    Raises `UnprocessableError` when the schemas nest too deep to compare."""
    diff = _Diff(old, new)
    try:
        diff.compare(read_shape(old), read_shape(new))
    except RecursionError as e:
        raise UnprocessableError("schema nested too deeply to compare") from e
    return diff.changes


class _Diff:
    def __init__(self, old_root: dict[str, Any], new_root: dict[str, Any]) -> None:
        self.old_root, self.new_root = old_root, new_root
        self.changes: list[SchemaChange] = []
        self._path: list[str] = []
        self._active: set[tuple[int, str, str, bool]] = set()

    def add(self, kind: str, *segments: str) -> None:
        self.changes.append(SchemaChange(kind, "#/" + "/".join([*self._path, *segments])))

    @contextmanager
    def at(self, segment: str) -> Iterator[None]:
        self._path.append(segment)
        try:
            yield
        finally:
            self._path.pop()

    def compare(self, old: Shape | None, new: Shape | None) -> None:
        if old is None or new is None:
            if old is not new:
                self.add("SCHEMA_REMOVED")
            return
        if old.kind != new.kind:
            if old.kind != "empty" or new.kind != "object":
                self.add("TYPE_NARROWED" if old.kind == "empty" else "TYPE_CHANGED")
                return
            old = Shape("object", {k: old.annotation(k) for k in ("id", "title", "description")
                                   if old.annotation(k) is not None})
        if old.key in self._active:
            return
        self._active.add(old.key)
        try:
            self._compare_same_kind(old, new)
        finally:
            self._active.discard(old.key)

    def _compare_same_kind(self, old: Shape, new: Shape) -> None:
        for keyword, kind in (("id", "ID_CHANGED"), ("title", "TITLE_CHANGED"),
                              ("description", "DESCRIPTION_CHANGED")):
            if old.annotation(keyword) != new.annotation(keyword):
                self.add(kind)
        compare_kind = getattr(self, f"_compare_{old.kind}", None)
        if compare_kind is not None:
            compare_kind(old, new)

    def _compare_string(self, old: Shape, new: Shape) -> None:
        o, n = old.node, new.node
        for keyword in ("maxLength", "minLength"):
            if o.get(keyword) != n.get(keyword):
                self.add("ATTRIBUTE_VALUE_CHANGED", keyword)
                return
        if "pattern" in o and "pattern" in n and o["pattern"] != n["pattern"]:
            self.add("ATTRIBUTE_VALUE_CHANGED", "pattern")

    def _compare_number(self, old: Shape, new: Shape) -> None:
        for keyword in ("maximum", "minimum", "multipleOf"):
            if old.node.get(keyword) != new.node.get(keyword):
                self.add("ATTRIBUTE_VALUE_CHANGED", keyword)
                return

    def _compare_enum(self, old: Shape, new: Shape) -> None:
        if _value_set(old.node["enum"]) != _value_set(new.node["enum"]):
            self.add("ENUM_ARRAY_CHANGED", "enum")

    def _compare_combined(self, old: Shape, new: Shape) -> None:
        if len(old.parts) != len(new.parts):
            self.add("SUB_SCHEMA_CHANGED")
        elif old.criterion != new.criterion:
            self.add("COMPOSITION_METHOD_CHANGED")
        else:
            for index, (old_part, new_part) in enumerate(zip(old.parts, new.parts)):
                with self.at(f"{old.criterion}/{index}"):
                    self.compare(old_part, new_part)

    def _compare_reference(self, old: Shape, new: Shape) -> None:
        with self.at("$ref"):
            self.compare(_shape(resolve_ref(self.old_root, old.node["$ref"])),
                         _shape(resolve_ref(self.new_root, new.node["$ref"])))

    def _compare_object(self, old: Shape, new: Shape) -> None:
        o, n = old.node, new.node
        self._compare_properties(o.get("properties", {}), n.get("properties", {}))
        with self.at("dependencies"):
            self._compare_dependencies(o.get("dependencies", {}), n.get("dependencies", {}))
        with self.at("additionalProperties"):
            self._compare_additional(o.get("additionalProperties"), n.get("additionalProperties"),
                                     "ADDITIONAL_PROPERTIES_CHANGED", narrowed="ADDITIONAL_PROPERTIES_NARROWED")
        old_required, new_required = o.get("required", []), n.get("required", [])
        if not set(old_required) <= set(new_required):
            self.add("REQUIRED_ARRAY_CHANGED", "required")
        elif len(old_required) != len(new_required):
            self.add("REQUIRED_ARRAY_EXTENDED", "required")
        for keyword in ("maxProperties", "minProperties"):
            if o.get(keyword) != n.get(keyword):
                self.add("ATTRIBUTE_VALUE_CHANGED", keyword)

    def _compare_properties(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        with self.at("properties"):
            for name, schema in old.items():
                with self.at(name):
                    if name in new:
                        self.compare(_shape(schema), _shape(new[name]))
                    else:
                        self.add("PROPERTY_REMOVED")
            if len(new) > len(old):
                self.add("PROPERTIES_ADDED")

    def _compare_dependencies(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        for name, names in old.items():
            if isinstance(names, list):
                with self.at(name):
                    if not isinstance(new.get(name), list) or set(names) != set(new[name]):
                        self.add("DEPENDENCY_ARRAY_CHANGED")
        old_schemas = {name: dep for name, dep in old.items() if isinstance(dep, dict)}
        new_schemas = {name: dep for name, dep in new.items() if isinstance(dep, dict)}
        if old_schemas.keys() != new_schemas.keys():
            self.add("DEPENDENCY_SCHEMA_CHANGED")
            return
        for name, schema in old_schemas.items():
            with self.at(name):
                self.compare(_shape(schema), _shape(new_schemas[name]))

    def _compare_array(self, old: Shape, new: Shape) -> None:
        o, n = old.node, new.node
        old_items, new_items = o.get("items"), n.get("items")
        with self.at("items"):
            self.compare(_shape(old_items), _shape(new_items))
        old_tuple = old_items if isinstance(old_items, list) else []
        new_tuple = new_items if isinstance(new_items, list) else []
        if len(old_tuple) != len(new_tuple):
            self.add("NUMBER_OF_ITEMS_CHANGED")
        else:
            for index, (old_item, new_item) in enumerate(zip(old_tuple, new_tuple)):
                with self.at(f"items/{index}"):
                    self.compare(_shape(old_item), _shape(new_item))
        with self.at("additionalItems"):
            self._compare_additional(o.get("additionalItems"), n.get("additionalItems"), "ADDITIONAL_ITEMS_CHANGED")
        for keyword in ("maxItems", "minItems"):
            if o.get(keyword) != n.get(keyword):
                self.add("ATTRIBUTE_VALUE_CHANGED", keyword)
        if bool(o.get("uniqueItems", False)) != bool(n.get("uniqueItems", False)):
            self.add("ATTRIBUTE_VALUE_CHANGED", "uniqueItems")

    def _compare_additional(self, old: Any, new: Any, changed: str, narrowed: str = "") -> None:
        """`additionalProperties`/`additionalItems`: false, or an optional schema."""
        if (old is False) != (new is False):
            self.add(changed)
        elif narrowed and not isinstance(old, dict) and isinstance(new, dict):
            self.add(narrowed)
        else:
            self.compare(_shape(old), _shape(new))


def _shape(node: Any) -> Shape | None:
    return read_shape(node) if isinstance(node, dict) else None


def _value_set(values: list[Any]) -> set[str]:
    return {json.dumps(value, sort_keys=True) for value in values}
