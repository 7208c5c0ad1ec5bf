"""How Nakadi reads a draft-4 JSON Schema document: as typed shapes.

Nakadi loads schemas with everit json-schema 1.8, which turns each schema
object into exactly one class (object, array, string, number, enum,
combined, reference, ...) chosen from the keywords present. Schema
evolution compares those classes, and `defines_property` (used for the
reserved `metadata` property and the `ordering_key_fields` check) walks
them, so both need the same reading. This module is that reading, over
plain JSON values:

- `enum` present: an enum shape, whatever else is there;
- one of `allOf`/`anyOf`/`oneOf`: a combined shape; with `type` (or
  keywords implying one) also present, an `allOf` of that typed shape and
  the combination; two of them at once: the document is refused;
- otherwise `type`: a string gives that shape (`integer` reads as number),
  a list gives an `anyOf` of one shape per type;
- no `type` (or a `$ref`): nothing at all is the empty shape, `$ref` a
  reference, else the first keyword family present decides (array keywords
  before object, number, string), then `not`, else the empty shape.

It also walks every subschema position of draft 4 and resolves local
`$ref` pointers. Pure functions; nothing is fetched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import jsonschema_rs

_ARRAY_KEYWORDS = ("items", "additionalItems", "minItems", "maxItems", "uniqueItems")
_OBJECT_KEYWORDS = ("properties", "required", "minProperties", "maxProperties", "dependencies",
                   "patternProperties", "additionalProperties")
_NUMBER_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_STRING_KEYWORDS = ("minLength", "maxLength", "pattern", "format")
COMBINERS = ("allOf", "anyOf", "oneOf")
_TYPE_KINDS = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean",
               "null": "null", "array": "array", "object": "object"}


class SchemaShapeError(ValueError):
    """The document is valid JSON but not a schema Nakadi can load."""


@dataclass(frozen=True, eq=False)
class Shape:
    """One schema as everit sees it: its kind, the JSON object it was read
    from, and for a combined shape its criterion and parts. `annotated` is
    false for the typed parts everit synthesises, which carry no id, title
    or description of their own."""

    kind: str
    node: dict[str, Any]
    criterion: str = ""
    parts: tuple[Shape, ...] = ()
    annotated: bool = True

    @property
    def key(self) -> tuple[int, str, str, bool]:
        """Identity for cycle detection: the same object read the same way."""
        return (id(self.node), self.kind, self.criterion, self.annotated)

    def annotation(self, keyword: str) -> Any:
        return self.node.get(keyword) if self.annotated else None


def read_shape(node: dict[str, Any]) -> Shape:
    """The shape of one schema object. Raises `SchemaShapeError`."""
    if "enum" in node:
        return Shape("enum", node)
    combiners = [keyword for keyword in COMBINERS if keyword in node]
    if len(combiners) > 1:
        raise SchemaShapeError(f"expected at most 1 of 'allOf', 'anyOf', 'oneOf', {len(combiners)} found")
    if combiners:
        return _combined(node, combiners[0])
    if "type" not in node or "$ref" in node:
        return _untyped(node)
    return _typed(node, node["type"], annotated=True)


def _combined(node: dict[str, Any], criterion: str) -> Shape:
    combination = Shape("combined", node, criterion, tuple(read_shape(part) for part in node[criterion]),
                        annotated=False)
    base = _typed(node, node["type"], annotated=False) if "type" in node else _sniffed(node, annotated=False)
    if base is None:
        return Shape("combined", node, criterion, combination.parts)
    return Shape("combined", node, "allOf", (base, combination))


def _typed(node: dict[str, Any], type_: Any, *, annotated: bool) -> Shape:
    if isinstance(type_, list):
        return Shape("combined", node, "anyOf", tuple(_typed(node, t, annotated=False) for t in type_),
                     annotated=annotated)
    if type_ not in _TYPE_KINDS:
        raise SchemaShapeError(f"unknown type: [{type_}]")
    return Shape(_TYPE_KINDS[type_], node, annotated=annotated)


def _untyped(node: dict[str, Any]) -> Shape:
    if not node:
        return Shape("empty", node)
    if "$ref" in node:
        return Shape("reference", node)
    sniffed = _sniffed(node, annotated=True)
    if sniffed is not None:
        return sniffed
    return Shape("not" if "not" in node else "empty", node)


def _sniffed(node: dict[str, Any], *, annotated: bool) -> Shape | None:
    for kind, keywords in (("array", _ARRAY_KEYWORDS), ("object", _OBJECT_KEYWORDS),
                           ("number", _NUMBER_KEYWORDS), ("string", _STRING_KEYWORDS)):
        if any(keyword in node for keyword in keywords):
            return Shape(kind, node, annotated=annotated)
    return None


def resolve_ref(root: dict[str, Any], ref: str) -> dict[str, Any] | None:
    """The object a local `$ref` ("#", "#/definitions/x") points to in
    `root`, or None when it points nowhere or is not a JSON pointer."""
    if not ref.startswith("#"):
        return None
    target: Any = root
    pointer = unquote(ref[1:])
    if pointer and not pointer.startswith("/"):
        return None
    for token in pointer.split("/")[1:] if pointer else ():
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            return None
    return target if isinstance(target, dict) else None


def _child_schemas(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every direct subschema of `node`, in every draft-4 position."""
    for keyword in ("properties", "patternProperties", "definitions", "dependencies"):
        members = node.get(keyword)
        if isinstance(members, dict):
            yield from (child for child in members.values() if isinstance(child, dict))
    for keyword in ("items", "additionalItems", "additionalProperties", "not"):
        child = node.get(keyword)
        if isinstance(child, dict):
            yield child
    for keyword in ("items", *COMBINERS):
        children = node.get(keyword)
        if isinstance(children, list):
            yield from (child for child in children if isinstance(child, dict))


def walk(root: dict[str, Any], depth_max: int = 256) -> Iterator[dict[str, Any]]:
    """Every schema object in the document (not following `$ref`), root
    first. Raises `SchemaShapeError` past `depth_max` levels of nesting."""
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > depth_max:
            raise SchemaShapeError(f"schema nested deeper than {depth_max} levels")
        yield node
        stack.extend((child, depth + 1) for child in _child_schemas(node))


def defines_property(root: dict[str, Any], path: str) -> bool:
    """Whether the schema `root` declares the property at the dot path
    `path` ("metadata", "data.order.id"), the way everit answers it.
    Raises `SchemaShapeError` when `$ref` chains run too deep to follow."""
    try:
        return _defines(root, read_shape(root), path.replace(".", "/"), frozenset())
    except RecursionError as e:
        raise SchemaShapeError("schema references nested too deeply") from e


def _defines(root: dict[str, Any], shape: Shape, field_path: str, seen: frozenset) -> bool:
    # A shape met again at the same path is a `$ref` cycle that defines nothing new.
    if (shape.key, field_path) in seen:
        return False
    seen = seen | {(shape.key, field_path)}
    if shape.kind == "object":
        return _object_defines(root, shape.node, field_path, seen)
    if shape.kind == "combined":
        matching = sum(_defines(root, part, field_path, seen) for part in shape.parts)
        return _criterion_holds(shape.criterion, matching, len(shape.parts))
    if shape.kind == "reference":
        target = resolve_ref(root, shape.node["$ref"])
        return target is not None and _defines(root, read_shape(target), field_path, seen)
    return False


def _object_defines(root: dict[str, Any], node: dict[str, Any], field_path: str, seen: frozenset) -> bool:
    field_path = field_path.removeprefix("#").removeprefix("/")
    if not field_path:
        return False
    token, _, remaining = field_path.partition("/")
    rest = remaining if "/" in field_path else None
    name = token.replace("~1", "/").replace("~0", "~")
    properties = node.get("properties", {})
    if name in properties and (rest is None or _defines(root, read_shape(properties[name]), rest, seen)):
        return True
    if _pattern_defines(root, node.get("patternProperties", {}), token, rest, seen):
        return True
    dependencies = {key: dep for key, dep in node.get("dependencies", {}).items() if isinstance(dep, dict)}
    return field_path in dependencies or any(
        _defines(root, read_shape(dep), field_path, seen) for dep in dependencies.values())


def _pattern_defines(root: dict[str, Any], patterns: dict[str, Any], token: str, rest: str | None,
                     seen: frozenset) -> bool:
    return any(_fullmatch(pattern, token) and (rest is None or _defines(root, read_shape(schema), rest, seen))
               for pattern, schema in patterns.items())


def _fullmatch(pattern: str, text: str) -> bool:
    # Java's Matcher.matches(), through the same regex engine events are validated with.
    try:
        anchored = jsonschema_rs.Draft4Validator({"pattern": f"^(?:{pattern})$"},
                                                 pattern_options=jsonschema_rs.RegexOptions())
    except ValueError:
        return False
    return anchored.is_valid(text)


def _criterion_holds(criterion: str, matching: int, total: int) -> bool:
    if criterion == "allOf":
        return matching == total
    if criterion == "anyOf":
        return matching > 0
    return matching == 1
