"""Event filters: the filter dialects of the CloudEvents Subscriptions API
(`exact`, `prefix`, `suffix`, `all`, `any`, `not`; not `sql`), validated
once and compiled into nested closures, then applied to events that are
JSON objects. Pure: no clock, no I/O.

Theory of operation
-------------------
A filter is a JSON list of filter expressions; an event matches when every
expression matches (an empty list, or null, means no filtering:
`parse_filters` returns None). An expression is an object with exactly one
key, its dialect:

- `{"exact": {PATH: STRING, ...}}`: the value at PATH equals STRING;
- `{"prefix": {PATH: STRING, ...}}`: it starts with STRING;
- `{"suffix": {PATH: STRING, ...}}`: it ends with STRING.
  One pair or more, every pair must match (the first CloudEvents draft
  allowed exactly one; the current one, and we, allow several, all of them
  to match). Comparison is case-sensitive, by code points. As CloudEvents
  requires, neither paths nor strings may be empty, so an empty prefix or
  suffix (which would only test presence) is a 422.
- `{"all": [EXPR, ...]}`: every nested expression matches (in order,
  stopping at the first that does not);
- `{"any": [EXPR, ...]}`: at least one matches (in order, stopping at the
  first that does); both lists are non-empty;
- `{"not": EXPR}`: the nested expression does not match.

A PATH is a dot path into the event: non-empty segments separated by
single dots, at most `PATH_SEGMENTS_MAX` of them, each any text without a
dot (a key holding a dot cannot be addressed). A path leads nowhere when a
key is missing or a step meets something other than an object; it then
matches no `exact`, `prefix` or `suffix`, so its `not` matches. The value
found compares as text: a string as it is; a number or boolean by its
canonical JSON text (10 -> "10", 1.5 -> "1.5", 10.0 -> "10.0", 1e2 ->
"100.0", true -> "true"); null, objects and arrays never match.

Limits (422 beyond): `FILTER_EXPRESSIONS_MAX` expressions in a list,
nested ones included; `FILTER_PATHS_MAX` path/string pairs in a list;
expressions nest `FILTER_DEPTH_MAX` deep (a top-level expression is at
depth 1). Each 422 (`UnprocessableError`) names the problem and where it
is, as `filters[0].any[2].exact["data.status"]: must not be empty`.

Evaluation is a tree of closures built once, so the per-event cost is one
JSON parse (`Filter.matches_json`) and a few dictionary lookups. orjson
turns integers at or beyond 2**64 (and below -2**63) into floats, and
refuses those beyond a double, while stored events keep them exactly
(`event_json`); so when a comparison meets such a float, or orjson refuses
the payload, the payload is parsed again with the standard library, which
keeps every integer exactly. Events without such numbers never take that
path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import orjson

from .errors import UnprocessableError

DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not")
FILTER_EXPRESSIONS_MAX = 100
FILTER_PATHS_MAX = 100
FILTER_DEPTH_MAX = 32
PATH_SEGMENTS_MAX = 64

_DIALECT_LIST = ", ".join(DIALECTS)
_EXPRESSION_SHAPE = "a filter expression is an object with exactly one dialect"
_SHOWN_CHARS_MAX = 60
# orjson parses integers in [-2**63, 2**64) as int and the others as float,
# rounded: -2**63 - 1 becomes the float -2**63, so that bound is ambiguous too.
_ORJSON_INT_MIN, _ORJSON_INT_END = -(2**63), 2**64

_Test = Callable[[object], bool]
_Text = Callable[[object], "str | None"]
_COMPARE: dict[str, Callable[[str, str], bool]] = {
    "exact": str.__eq__, "prefix": str.startswith, "suffix": str.endswith,
}


class _Inexact(Exception):
    """A comparison met a float that may be an integer orjson could not keep."""


class Filter:
    """A compiled list of filter expressions; an event matches when every expression matches."""

    __slots__ = ("expressions", "_test", "_test_orjson")

    def __init__(self, expressions: object, *, field: str = "filters") -> None:
        """Validate and compile `expressions`; `UnprocessableError` naming the
        problem (under `field`) when they are not valid."""
        self.expressions: list[dict] = _Validator(field).expression_list(expressions)
        self._test = _all_of([_compile(e, _text) for e in self.expressions])
        self._test_orjson = _all_of([_compile(e, _text_orjson) for e in self.expressions])

    def matches(self, event: object) -> bool:
        """Whether `event`, a parsed JSON value, passes every expression."""
        return self._test(event)

    def matches_json(self, payload: bytes) -> bool:
        """Whether the JSON `payload` passes; a payload that is not valid JSON never matches."""
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return self._matches_exactly(payload)
        try:
            return self._test_orjson(event)
        except _Inexact:
            return self._matches_exactly(payload)

    def _matches_exactly(self, payload: bytes) -> bool:
        try:
            event = json.loads(bytes(payload).decode(), parse_constant=_refuse_constant)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, an integer past 4300 digits
            return False
        return self._test(event)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Filter):
            return NotImplemented
        return self.expressions == other.expressions

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Filter({self.expressions!r})"


def parse_filters(value: object, *, field: str = "filters") -> Filter | None:
    """Validate `value`, a JSON list of filter expressions, and compile it;
    None for an empty list or null (no filtering). `UnprocessableError`
    (422) whose detail names the problem and where, as
    `filters[0]: unknown dialect "regex"; use one of exact, prefix, suffix, all, any, not`."""
    if value is None or (isinstance(value, list) and not value):
        return None
    return Filter(value, field=field)


class _Validator:
    """Checks one list of expressions and returns a fresh copy of it (so later
    changes to the caller's objects cannot reach a compiled filter)."""

    def __init__(self, field: str) -> None:
        self._field = field
        self._expressions = 0
        self._paths = 0

    def expression_list(self, value: object) -> list[dict]:
        if not isinstance(value, list):
            raise UnprocessableError(f"{self._field}: must be a list of filter expressions")
        return [self._expression(item, f"{self._field}[{i}]", 1) for i, item in enumerate(value)]

    def _expression(self, value: object, where: str, depth: int) -> dict:
        if depth > FILTER_DEPTH_MAX:
            raise UnprocessableError(f"{where}: filter expressions nest at most {FILTER_DEPTH_MAX} deep")
        self._expressions += 1
        if self._expressions > FILTER_EXPRESSIONS_MAX:
            raise UnprocessableError(
                f"{self._field}: at most {FILTER_EXPRESSIONS_MAX} filter expressions in total (nested ones included)")
        if not isinstance(value, dict) or len(value) != 1:
            raise UnprocessableError(f"{where}: {_EXPRESSION_SHAPE}")
        ((dialect, body),) = value.items()
        inner = f"{where}.{dialect}"
        if dialect in _COMPARE:
            return {dialect: self._comparison(body, inner)}
        if dialect == "all" or dialect == "any":
            if not isinstance(body, list):
                raise UnprocessableError(f"{inner}: must be a list of filter expressions")
            if not body:
                raise UnprocessableError(f"{inner}: must not be empty")
            return {dialect: [self._expression(item, f"{inner}[{i}]", depth + 1) for i, item in enumerate(body)]}
        if dialect == "not":
            return {dialect: self._expression(body, inner, depth + 1)}
        if dialect == "sql":
            raise UnprocessableError(f'{where}: dialect "sql" is not supported; use one of {_DIALECT_LIST}')
        raise UnprocessableError(f"{where}: unknown dialect {_show(dialect)}; use one of {_DIALECT_LIST}")

    def _comparison(self, body: object, where: str) -> dict[str, str]:
        if not isinstance(body, dict):
            raise UnprocessableError(f"{where}: must be an object mapping attribute paths to strings")
        if not body:
            raise UnprocessableError(f"{where}: must not be empty")
        for path, expected in body.items():
            self._paths += 1
            if self._paths > FILTER_PATHS_MAX:
                raise UnprocessableError(f"{self._field}: at most {FILTER_PATHS_MAX} attribute paths in total")
            _check_path(path, where)
            if not isinstance(expected, str):
                raise UnprocessableError(f"{where}[{_show(path)}]: must be a string, not {_show(expected)}")
            if not expected:
                raise UnprocessableError(f"{where}[{_show(path)}]: must not be empty")
        return {str(path): str(expected) for path, expected in body.items()}


def _check_path(path: object, where: str) -> None:
    if not isinstance(path, str):
        raise UnprocessableError(f"{where}: {_show(path)} is not a dot path (not a string)")
    segments = path.split(".", PATH_SEGMENTS_MAX)
    if "" in segments:
        raise UnprocessableError(f"{where}: {_show(path)} is not a dot path (empty segment)")
    if len(segments) > PATH_SEGMENTS_MAX:
        raise UnprocessableError(f"{where}: {_show(path)} is not a dot path (more than {PATH_SEGMENTS_MAX} segments)")


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _show(value: object) -> str:
    """`value` as a client reads it in a message: scalars as JSON, long strings cut."""
    if isinstance(value, str):
        text = orjson.dumps(value).decode()
        return text if len(text) <= _SHOWN_CHARS_MAX else text[:_SHOWN_CHARS_MAX - 4] + '..."'
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None or isinstance(value, bool | int | float):
        return _show_scalar(value)
    return type(value).__name__


def _show_scalar(value: object) -> str:
    if value is None or isinstance(value, bool):
        return orjson.dumps(value).decode()
    text = _text(value)
    if text is None:
        return repr(value)
    return text if len(text) <= _SHOWN_CHARS_MAX else text[:_SHOWN_CHARS_MAX - 3] + "..."


# Evaluation: the closures below run once per event and expression, so they
# test exact types first (what JSON parsers produce) and allocate nothing
# unless a number or boolean must be turned into text.

def _compile(expression: dict, text: _Text) -> _Test:
    ((dialect, body),) = expression.items()
    if dialect == "all":
        return _all_of([_compile(e, text) for e in body])
    if dialect == "any":
        return _any_of([_compile(e, text) for e in body])
    if dialect == "not":
        inner = _compile(body, text)
        return lambda event: not inner(event)
    return _all_of([_comparison(dialect, path.split("."), expected, text) for path, expected in body.items()])


def _all_of(tests: list[_Test]) -> _Test:
    if not tests:
        return lambda event: True
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda event: first(event) and second(event)
    every = tuple(tests)

    def all_match(event: object) -> bool:
        for test in every:
            if not test(event):
                return False
        return True
    return all_match


def _any_of(tests: list[_Test]) -> _Test:
    assert tests, "the validator refuses an empty any"
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda event: first(event) or second(event)
    some = tuple(tests)

    def any_matches(event: object) -> bool:
        for test in some:
            if test(event):
                return True
        return False
    return any_matches


def _comparison(dialect: str, segments: list[str], expected: str, text: _Text) -> _Test:
    """One path/string pair; the path walk is inlined (one call per pair)."""
    assert 1 <= len(segments) <= PATH_SEGMENTS_MAX and all(segments), segments
    compare = _COMPARE[dialect]
    if len(segments) == 1:
        (key,) = segments

        def compare1(event: object) -> bool:
            if not isinstance(event, dict):
                return False
            value = event.get(key)
            if type(value) is not str:
                value = text(value)
                if value is None:
                    return False
            return compare(value, expected)
        return compare1
    if len(segments) == 2:
        first, second = segments

        def compare2(event: object) -> bool:
            if not isinstance(event, dict):
                return False
            value = event.get(first)
            if not isinstance(value, dict):
                return False
            value = value.get(second)
            if type(value) is not str:
                value = text(value)
                if value is None:
                    return False
            return compare(value, expected)
        return compare2
    keys = tuple(segments)

    def compare_n(event: object) -> bool:
        value = event
        for key in keys:
            if not isinstance(value, dict):
                return False
            value = value.get(key)
        if type(value) is not str:
            value = text(value)
            if value is None:
                return False
        return compare(value, expected)
    return compare_n


def _text(value: object) -> str | None:
    """The text a value compares as: None for null, objects, arrays and
    anything that is not JSON (a missing path is None too)."""
    if isinstance(value, str):
        return str(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        try:
            return int.__repr__(value)
        except ValueError:  # beyond Python's 4300-digit conversion limit: no JSON parser made it
            return None
    if isinstance(value, float):
        return orjson.dumps(value).decode() if math.isfinite(value) else None
    return None


def _text_orjson(value: object) -> str | None:
    """`_text` for values orjson parsed: a float where orjson may have
    dropped an integer's digits raises `_Inexact`."""
    if type(value) is float and value.is_integer() and not _ORJSON_INT_MIN < value < _ORJSON_INT_END:
        raise _Inexact
    return _text(value)
