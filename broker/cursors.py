"""Nakadi's offsets and cursors over one partition, and the cursor JSON that
requests carry.

A partition retains the dense offsets [start, end) of its log: `start` is
the oldest retained record, `end` the next to be written; `start == end`
when nothing is retained. Cursors are exclusive: a cursor names the last
consumed record, so it is valid iff `start - 1 <= cursor <= end - 1`, where
`start - 1` is "before the first event" (what BEGIN resolves to) and
`end - 1` the newest event.

Offsets on the wire are Nakadi's "version one" strings, `001-0001-` and the
offset zero-padded to 18 digits (`001-0001--1` below zero). We have one
timeline, order 1. Zero padding keeps string order equal to offset order
from -1 up to 10**18 - 1; subscription commits compare offsets as strings.

Errors. Offset-level functions (`parse_offset`, `require_available`) raise
`InvalidCursor`, a neutral error that carries the reason of Nakadi's
`CursorError` and renders Nakadi's `InvalidCursorException` text. It is not
a `BrokerError`: its status depends on where the cursor came from. The
request-level functions below translate it once, as Nakadi does there:

- `stream_start` (low-level stream, `X-Nakadi-Cursors`): 400 unparseable
  header, 412 for everything else.
- `list_partitions` / `get_partition` (`/partitions`): 422, except an
  unknown partition without `consumed_offset` (404).
- `cursor_distances`, `cursors_lag`, `shifted_cursors`: 400 for a body of
  the wrong shape, 422 for the rest with Nakadi's cursor-operation texts.

Request-level functions take the partitions' bounds as `bounds[i] ==
(start, end)` for partition `str(i)`, and return the wire dicts.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .errors import (
    InvalidFieldsError,
    InvalidRequestError,
    NotFoundError,
    PreconditionFailedError,
    UnprocessableError,
)

__all__ = [
    "BEGIN", "OFFSET_DIGITS", "OFFSET_PREFIX", "Begin", "Cursor", "CursorProblem", "InvalidCursor",
    "partition_ids", "parse_partition", "format_offset", "parse_offset", "resolve",
    "is_available", "require_available", "distance", "lag", "shift", "partition_view",
    "stream_start", "list_partitions", "get_partition",
    "cursor_distances", "cursors_lag", "shifted_cursors",
]


class Begin(enum.Enum):
    """The symbolic offset "BEGIN": before the oldest retained event."""

    BEGIN = "BEGIN"


BEGIN: Final = Begin.BEGIN

OFFSET_DIGITS: Final = 18
OFFSET_PREFIX: Final = "001-0001-"  # version 001, timeline order 1 as %04x
_OFFSET_MAX: Final = 10**OFFSET_DIGITS - 1  # the last offset whose string still sorts
_LONG_MIN: Final = -(2**63)
_LONG_MAX: Final = 2**63 - 1
_DIGITS = re.compile(r"-?[0-9]+")  # Nakadi's CursorConversionUtils.NUMBERS_ONLY_PATTERN
_HEX_ORDER = re.compile(r"[+-]?[0-9a-fA-F]+")  # what Java's Integer.parseInt(s, 16) accepts
_PARTITION_ID = re.compile(r"0|[1-9][0-9]*")

# Texts of Nakadi's controllers and exception handlers, by where they apply.
HEADER_SYNTAX: Final = "incorrect syntax of X-nakadi-cursors header"
DUPLICATE_PARTITIONS: Final = "duplicate partition ids provided in cursors"
MALFORMED_CURSORS: Final = "malformed cursors"
INVALID_CONSUMED: Final = "invalid consumed_offset or partition"
PARTITION_NOT_FOUND_404: Final = "partition not found"
CONVERSION_FAILED: Final = "problem converting cursors"
OP_PARTITION_NOT_FOUND: Final = "Partition not found."
OP_DIFFERENT_PARTITIONS: Final = (
    "Cursors with different partition. Pairs of cursors should have matching partitions.")
OP_TIMELINE_NOT_FOUND: Final = (
    "Timeline not found. It might happen in case the cursor refers to a timeline that has "
    "already expired.")
BODY_SHAPE: Final = "JSON parse error: expected a JSON array of cursor objects"


# --- partitions -------------------------------------------------------------

def partition_ids(count: int) -> list[str]:
    """The ids of a type with `count` partitions, in numeric order."""
    return [str(i) for i in range(count)]


def parse_partition(text: object, count: int) -> int | None:
    """The index of partition id `text`, or None unless it is exactly one of
    "0".."count-1" (Nakadi compares partition ids as strings)."""
    if isinstance(text, str) and _PARTITION_ID.fullmatch(text):
        index = int(text)
        if index < count:
            return index
    return None


# --- offsets ----------------------------------------------------------------

def format_offset(offset: int) -> str:
    """The version-one string of `offset`, which is -1 or more."""
    if not -1 <= offset <= _OFFSET_MAX:
        raise ValueError(f"offset {offset} cannot be formatted")
    return OFFSET_PREFIX + _inner(offset)


def _inner(offset: int) -> str:
    # Nakadi's KafkaCursor.toNakadiOffset: padded when >= 0, plain below.
    return str(offset).zfill(OFFSET_DIGITS) if offset >= 0 else str(offset)


class CursorProblem(enum.Enum):
    """Why a cursor is invalid (Nakadi's `CursorError`)."""

    PARTITION_NOT_FOUND = "partition_not_found"
    UNAVAILABLE = "unavailable"
    INVALID_FORMAT = "invalid_format"
    NULL_PARTITION = "null_partition"
    NULL_OFFSET = "null_offset"
    INVALID_OFFSET = "invalid_offset"


class InvalidCursor(ValueError):
    """A cursor Nakadi rejects with `InvalidCursorException`; the caller picks
    the status. `offset` is the text Nakadi puts in the message."""

    def __init__(self, problem: CursorProblem, partition: str | None = None,
                 offset: str | None = None) -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.partition = partition
        self.offset = offset

    def at(self, partition: str | None) -> InvalidCursor:
        """The same error naming `partition`."""
        return InvalidCursor(self.problem, partition, self.offset)

    def detail(self, event_type: str) -> str:
        """Nakadi's message for this error (Java prints a missing value as "null")."""
        p = "null" if self.partition is None else self.partition
        o = "null" if self.offset is None else self.offset
        match self.problem:
            case CursorProblem.PARTITION_NOT_FOUND:
                return f"non existing partition {p}"
            case CursorProblem.UNAVAILABLE:
                return (f"offset {o} for partition {p} event type {event_type} is unavailable "
                        "as retention time of data elapsed. PATCH partition offset with valid "
                        "and available offset")
            case CursorProblem.NULL_OFFSET:
                return "offset must not be null"
            case CursorProblem.NULL_PARTITION:
                return "partition must not be null"
            case CursorProblem.INVALID_FORMAT:
                return f"invalid cursor format, partition: {p} offset: {o}"
            case CursorProblem.INVALID_OFFSET:
                return f"invalid offset {o} for partition {p}"
        raise AssertionError(self.problem)


def parse_offset(text: str) -> int | Begin:
    """An offset as Nakadi's CursorConverter reads it.

    Text starting "001" is version one: `001-XXXX-N`, XXXX the timeline
    order in hex (only 1 exists here), N decimal digits with an optional
    minus, padded or not. Otherwise "BEGIN" in any case, or version zero:
    decimal digits, optionally negative. Raises `InvalidCursor`.
    """
    if text.startswith("001"):
        return _parse_version_one(text)
    if len(text) == 5 and text.upper() == "BEGIN":
        return BEGIN
    if not _DIGITS.fullmatch(text):
        raise InvalidCursor(CursorProblem.INVALID_OFFSET, offset=text)
    inner = text if text.startswith("-") else text.zfill(OFFSET_DIGITS)
    return _long(inner)


def _parse_version_one(text: str) -> int:
    parts = text.split("-", 2)
    if (len(parts) != 3 or len(parts[0]) != 3 or len(parts[1]) != 4
            or not _DIGITS.fullmatch(parts[2]) or not _HEX_ORDER.fullmatch(parts[1])):
        raise InvalidCursor(CursorProblem.INVALID_OFFSET, offset=text)
    if int(parts[1], 16) != 1:
        raise InvalidCursor(CursorProblem.UNAVAILABLE, offset=parts[2])
    return _long(parts[2])


def _long(inner: str) -> int:
    value = int(inner)
    if not _LONG_MIN <= value <= _LONG_MAX:
        raise InvalidCursor(CursorProblem.INVALID_FORMAT, offset=inner)
    return value


def resolve(offset: int | Begin, start: int, end: int) -> int:
    """`offset` as a number: BEGIN is `start - 1`, before the oldest retained event."""
    assert 0 <= start <= end
    return start - 1 if offset is BEGIN else offset


def is_available(offset: int, start: int, end: int) -> bool:
    """Whether a stream can start after `offset`: from before-first to newest."""
    return start - 1 <= offset <= end - 1


def require_available(partition: str, offset: int, start: int, end: int) -> None:
    """Raise `InvalidCursor(UNAVAILABLE)` unless `offset` is available (Nakadi
    uses the same text for expired and for future offsets)."""
    if not is_available(offset, start, end):
        raise InvalidCursor(CursorProblem.UNAVAILABLE, partition, _inner(offset))


# --- cursor arithmetic ------------------------------------------------------

def distance(initial: int, final: int) -> int:
    """The number of events in (initial, final]; negative when final is before."""
    return final - initial


def lag(cursor: int, start: int, end: int) -> int:
    """Unconsumed events after `cursor`: its distance to the newest event.

    Like Nakadi, retention is not checked: an expired cursor counts events
    that are gone, a future one gives a negative lag. `start` is unused.
    """
    return distance(cursor, end - 1)


def shift(cursor: int, shift: int, start: int, end: int) -> int:
    """`cursor` moved by `shift` events; both ends must be available, else 422.

    BEGIN + 1 is the first event; BEGIN - 1 and newest + 1 are refused.
    """
    if not is_available(cursor, start, end):
        raise UnprocessableError(CONVERSION_FAILED)
    moved = cursor + shift
    if not is_available(moved, start, end):
        raise UnprocessableError(OP_TIMELINE_NOT_FOUND)
    return moved


def partition_view(partition: int, start: int, end: int, consumed: int | None = None) -> dict:
    """`/partitions`'s object; `unconsumed_events` only when `consumed` is given.

    When everything has expired the newest offset is below the oldest.
    """
    view: dict[str, object] = {
        "partition": str(partition),
        "oldest_available_offset": format_offset(start),
        "newest_available_offset": format_offset(end - 1),
    }
    if consumed is not None:
        view["unconsumed_events"] = lag(consumed, start, end)
    return view


# --- cursor JSON --------------------------------------------------------------

@dataclass(frozen=True)
class Cursor:
    """A cursor as sent: either field may be missing (None)."""

    partition: str | None
    offset: str | None


class _Shape(ValueError):
    """JSON that Jackson would refuse to bind to Nakadi's view classes."""


def _decode(text: str) -> object:
    # Jackson reads the first value and ignores what follows it.
    try:
        value, _ = json.JSONDecoder(parse_constant=_reject).raw_decode(text.lstrip(" \t\r\n"))
    except (ValueError, RecursionError) as e:
        raise _Shape(str(e)) from e
    return value


def _reject(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _text(value: object) -> str | None:
    # Jackson coerces scalars into a String field and refuses containers.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    raise _Shape("a cursor field is not a scalar")


def _cursor(value: object) -> Cursor:
    if not isinstance(value, dict):
        raise _Shape("a cursor is not an object")
    return Cursor(_text(value.get("partition")), _text(value.get("offset")))


def _cursor_list(value: object) -> list[Cursor]:
    if not isinstance(value, list):
        raise _Shape("the cursors are not an array")
    return [_cursor(item) for item in value]


def _sent(cursor: Cursor) -> dict:
    return {"partition": cursor.partition, "offset": cursor.offset}


def _convert(cursor: Cursor, bounds: Sequence[tuple[int, int]]) -> int:
    """The number a present cursor names, as Nakadi's converter finds it:
    BEGIN needs the partition to exist; other offsets do not."""
    assert cursor.partition is not None and cursor.offset is not None
    try:
        offset = parse_offset(cursor.offset)
    except InvalidCursor as e:
        raise e.at(cursor.partition) from None
    if offset is not BEGIN:
        return offset
    index = parse_partition(cursor.partition, len(bounds))
    if index is None:
        raise InvalidCursor(CursorProblem.PARTITION_NOT_FOUND, cursor.partition)
    return resolve(BEGIN, *bounds[index])


# --- low-level stream ---------------------------------------------------------

def stream_start(event_type: str, bounds: Sequence[tuple[int, int]],
                 header: str | None) -> dict[int, int]:
    """Where a low-level stream starts: {partition index: cursor}, in the
    header's order. No header (or `null`) means every partition from its
    newest event. Raises InvalidRequestError (400) or PreconditionFailedError (412).

    Nakadi breaks a stream that names a partition twice; we refuse it (412).
    """
    if header is not None:
        try:
            value = _decode(header)
            cursors = None if value is None else _cursor_list(value)
        except _Shape as e:
            raise InvalidRequestError(HEADER_SYNTAX) from e
        if cursors is not None:
            try:
                return _stream_cursors(cursors, bounds)
            except InvalidCursor as e:
                raise PreconditionFailedError(e.detail(event_type)) from None
    return {index: end - 1 for index, (_, end) in enumerate(bounds)}


def _stream_cursors(cursors: list[Cursor], bounds: Sequence[tuple[int, int]]) -> dict[int, int]:
    for c in cursors:
        if c.partition is None:
            raise InvalidCursor(CursorProblem.NULL_PARTITION, c.partition, c.offset)
        if c.offset is None:
            raise InvalidCursor(CursorProblem.NULL_OFFSET, c.partition, c.offset)
    if not cursors:
        raise InvalidCursor(CursorProblem.INVALID_FORMAT)
    offsets = [_convert(c, bounds) for c in cursors]
    start_at: dict[int, int] = {}
    for c, offset in zip(cursors, offsets):
        partition = c.partition
        assert partition is not None
        index = parse_partition(partition, len(bounds))
        if index is None:
            raise InvalidCursor(CursorProblem.PARTITION_NOT_FOUND, partition)
        require_available(partition, offset, *bounds[index])
        if index in start_at:
            raise PreconditionFailedError(DUPLICATE_PARTITIONS)
        start_at[index] = offset
    return start_at


# --- /partitions --------------------------------------------------------------

def list_partitions(event_type: str, bounds: Sequence[tuple[int, int]],
                    cursors: str | None = None) -> list[dict]:
    """`GET /event-types/{name}/partitions[?cursors=...]`.

    Partitions named in `cursors` carry `unconsumed_events` and come last,
    in the order given, as in Nakadi. Raises UnprocessableError (422).
    """
    given = _partition_cursors(event_type, bounds, cursors) if cursors else {}
    views = [partition_view(i, start, end) for i, (start, end) in enumerate(bounds) if i not in given]
    views += [partition_view(i, *bounds[i], consumed=offset) for i, offset in given.items()]
    return views


def _partition_cursors(event_type: str, bounds: Sequence[tuple[int, int]],
                       text: str) -> dict[int, int]:
    try:
        cursors = _cursor_list(_decode(text))
    except _Shape as e:
        raise UnprocessableError(MALFORMED_CURSORS) from e
    for c in cursors:
        if not c.partition:
            raise UnprocessableError(InvalidCursor(CursorProblem.NULL_PARTITION).detail(event_type))
        if not c.offset:
            raise UnprocessableError(InvalidCursor(CursorProblem.NULL_OFFSET).detail(event_type))
    if len({c.partition for c in cursors}) < len(cursors):
        raise UnprocessableError(DUPLICATE_PARTITIONS)
    offsets = [_consumed(event_type, bounds, c) for c in cursors]
    given: dict[int, int] = {}
    for c, offset in zip(cursors, offsets):
        index = parse_partition(c.partition, len(bounds))
        if index is None:
            raise UnprocessableError(INVALID_CONSUMED)
        given[index] = offset
    return given


def _consumed(event_type: str, bounds: Sequence[tuple[int, int]], cursor: Cursor) -> int:
    try:
        return _convert(cursor, bounds)
    except InvalidCursor as e:
        if e.problem is CursorProblem.PARTITION_NOT_FOUND:
            raise UnprocessableError(INVALID_CONSUMED) from None
        raise UnprocessableError(e.detail(event_type)) from None


def get_partition(event_type: str, bounds: Sequence[tuple[int, int]], partition: str,
                  consumed_offset: str | None = None) -> dict:
    """`GET /event-types/{name}/partitions/{partition}[?consumed_offset=...]`.

    Raises NotFoundError (404) for an unknown partition, but with
    `consumed_offset` Nakadi answers 422 for that as for a bad offset.
    """
    index = parse_partition(partition, len(bounds))
    if consumed_offset is None:
        if index is None:
            raise NotFoundError(PARTITION_NOT_FOUND_404)
        return partition_view(index, *bounds[index])
    offset = _consumed(event_type, bounds, Cursor(partition, consumed_offset))
    if index is None:
        raise UnprocessableError(INVALID_CONSUMED)
    return partition_view(index, *bounds[index], consumed=offset)


# --- cursor operations ----------------------------------------------------------

def cursor_distances(bounds: Sequence[tuple[int, int]], body: object) -> list[dict]:
    """`POST /event-types/{name}/cursor-distances`: each query as sent plus `distance`."""
    queries = _body_list(body)
    pairs: list[tuple[Cursor, Cursor]] = []
    problems: list[str] = []
    for i, query in enumerate(queries):
        if not isinstance(query, dict):
            raise InvalidRequestError(BODY_SHAPE)
        pair = []
        for name in ("initial_cursor", "final_cursor"):
            value = query.get(name)
            if value is None:
                problems.append(_must_not_be_null(f"list[{i}].{name}"))
                pair.append(Cursor(None, None))
            else:
                pair.append(_op_cursor(value, f"list[{i}].{name}", problems))
        pairs.append((pair[0], pair[1]))
    _raise_problems(problems)
    answers = []
    for initial, final in pairs:
        first, last = _op_convert(initial, bounds), _op_convert(final, bounds)
        if initial.partition != final.partition:
            raise UnprocessableError(OP_DIFFERENT_PARTITIONS)
        _op_partition(initial, bounds)
        answers.append({"initial_cursor": _sent(initial), "final_cursor": _sent(final),
                        "distance": distance(first, last)})
    return answers


def cursors_lag(bounds: Sequence[tuple[int, int]], body: object) -> list[dict]:
    """`POST /event-types/{name}/cursors-lag`: a partition view with
    `unconsumed_events` per cursor, in request order."""
    problems: list[str] = []
    cursors = [_op_cursor(item, f"list[{i}]", problems) for i, item in enumerate(_body_list(body))]
    _raise_problems(problems)
    offsets = [_op_convert(c, bounds) for c in cursors]
    views = []
    for c, offset in zip(cursors, offsets):
        index = _op_partition(c, bounds)
        views.append(partition_view(index, *bounds[index], consumed=offset))
    return views


def shifted_cursors(bounds: Sequence[tuple[int, int]], body: object) -> list[dict]:
    """`POST /event-types/{name}/shifted-cursors`: each cursor moved by its
    `shift` (default 0), in request order."""
    problems: list[str] = []
    items = _body_list(body)
    cursors = [_op_cursor(item, f"list[{i}]", problems) for i, item in enumerate(items)]
    shifts = [_shift_value(item) for item in items]
    _raise_problems(problems)
    moved = []
    for c, by in zip(cursors, shifts):
        offset = _op_convert(c, bounds)
        index = _op_partition(c, bounds)
        moved.append({"partition": c.partition, "offset": format_offset(shift(offset, by, *bounds[index]))})
    return moved


def _body_list(body: object) -> list:
    if not isinstance(body, list):
        raise InvalidRequestError(BODY_SHAPE)
    return body


def _op_cursor(value: object, path: str, problems: list[str]) -> Cursor:
    # Bean validation of Nakadi's Cursor view: @NotNull and @Size(min=1) on each field.
    try:
        cursor = _cursor(value)
    except _Shape as e:
        raise InvalidRequestError(BODY_SHAPE) from e
    for name, text in (("partition", cursor.partition), ("offset", cursor.offset)):
        if text is None:
            problems.append(_must_not_be_null(f"{path}.{name}"))
        elif not text:
            problems.append(f'Field "{path}.{name}" cursor {name} cannot be empty\n')
    return cursor


def _must_not_be_null(path: str) -> str:
    return f'Field "{path}" must not be null\n'


def _raise_problems(problems: list[str]) -> None:
    if problems:
        raise InvalidFieldsError("".join(problems))


def _shift_value(item: object) -> int:
    # Jackson binds `shift` to a primitive long: absent or null is 0.
    value = item.get("shift") if isinstance(item, dict) else None
    if value is None:
        return 0
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)  # Jackson truncates a float into a long
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not _LONG_MIN <= value <= _LONG_MAX:
        raise InvalidRequestError(BODY_SHAPE)
    return value


def _op_convert(cursor: Cursor, bounds: Sequence[tuple[int, int]]) -> int:
    try:
        return _convert(cursor, bounds)
    except InvalidCursor:
        raise UnprocessableError(CONVERSION_FAILED) from None


def _op_partition(cursor: Cursor, bounds: Sequence[tuple[int, int]]) -> int:
    index = parse_partition(cursor.partition, len(bounds))
    if index is None:
        raise UnprocessableError(OP_PARTITION_NOT_FOUND)
    return index
