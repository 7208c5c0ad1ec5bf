"""Choosing the partition of each published event, as Nakadi does, so that
keys land where Nakadi would put them.

Strategies (`partition_strategy` of the event type):

- `random`: any partition, uniformly.
- `user_defined`: `metadata.partition` of the event, which must be the id
  of an existing partition.
- `hash`: Nakadi's HashPartitionStrategy. For each key field (prefixed
  `data.` for category `data`) the value at that path is turned into the
  string Nakadi's org.json value prints (`java_to_string`), hashed with
  Java's `String.hashCode` over UTF-16 code units, and the hashes summed
  with 32-bit overflow. The partition is `ordered[abs(sum % count)]` with
  Java's remainder, where `ordered` is the partition ids sorted *as
  strings* ("0", "1", "10", "11", ..., "2", ...), as Nakadi's
  EventTypeCache orders them.

A failure raises `PartitioningError`, a 422 whose `detail` is Nakadi's text.
Nakadi reports every partitioning failure, a missing key field included, as
the failed item of the batch at step `partitioning`; publishing catches it
for that. `MissingKeyFieldError` marks the missing key field, should the
caller prefer a bare Problem for it.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

import numpy as np

from .errors import UnprocessableError
from .java_hash import MASK, VECTOR_MIN, java_string_hash, java_string_hashes

__all__ = [
    "STRATEGIES", "PartitioningError", "MissingKeyFieldError", "choose_partition", "choose_partitions",
    "partition_keys", "hash_partition", "hash_order", "java_to_string",
]

STRATEGIES: Final = ("hash", "user_defined", "random")
DATA_PREFIX: Final = "data."

_RNG: Final = random.Random()


class PartitioningError(UnprocessableError):
    """The event cannot be given a partition; `detail` is Nakadi's text."""


class MissingKeyFieldError(PartitioningError):
    """A hash key field is absent from the event ("field X doesn't exist.")."""


def choose_partition(event: Mapping[str, object], strategy: str, key_fields: Sequence[str],
                     category: str, partition_count: int, rng: random.Random | None = None) -> str:
    """The id of the partition `event` goes to. Raises `PartitioningError`."""
    assert partition_count >= 1
    if strategy == "hash":
        keys = partition_keys(event, key_fields, category)
        # Any hash modulo 1 is 0: with one partition only the keys' presence matters.
        return "0" if partition_count == 1 else hash_partition(keys, partition_count)
    if strategy == "user_defined":
        return _user_defined(event, partition_count)
    if strategy == "random":
        return "0" if partition_count == 1 else str((rng or _RNG).randrange(partition_count))
    raise PartitioningError(f"Partition Strategy defined for this EventType is not found: {strategy}")


def choose_partitions(events: Sequence[Mapping[str, object]], strategy: str, key_fields: Sequence[str],
                      category: str, partition_count: int) -> list[str] | None:
    """The partition ids of a batch under the `hash` strategy, hashed in
    one vectorised pass. None when the batch is left to `choose_partition`
    one event at a time: for another strategy, for a batch too small to
    gain, or when an event lacks a key (`choose_partition` then says which
    and why)."""
    if strategy != "hash" or len(events) < VECTOR_MIN:
        return None
    paths = _paths(tuple(key_fields), category)
    columns = [_key_column(events, path) for path in paths]
    if not paths or any(column is None for column in columns):
        return None
    if partition_count == 1:
        return ["0"] * len(events)
    total = np.zeros(len(events), dtype=np.int32)
    for column in columns:
        total += java_string_hashes(column)  # int32 arithmetic wraps like Java's
    # abs(a % n) with Java's truncating % equals abs(a) % n; in int64 no overflow.
    ids = hash_order(partition_count)
    return [ids[i] for i in (np.abs(total.astype(np.int64)) % partition_count).tolist()]


_ABSENT: Final = object()


def _key_column(events: Sequence[Mapping[str, object]], path: Sequence[str]) -> list[str] | None:
    """Every event's key string at `path`, or None when one lacks it."""
    values: list[object] = list(events)
    for field in path:
        values = [value.get(field, _ABSENT) if type(value) is dict else _ABSENT for value in values]
    if any(value is _ABSENT for value in values):
        return None
    if all(type(value) is str for value in values):
        return values  # type: ignore[return-value]
    return [java_to_string(value) for value in values]


def _user_defined(event: Mapping[str, object], partition_count: int) -> str:
    metadata = event.get("metadata")
    partition = metadata.get("partition") if isinstance(metadata, dict) else None
    if not isinstance(partition, str):
        raise PartitioningError(
            "Failed to resolve partition. Failed to get partition from event metadata")
    if partition not in _partition_set(partition_count):
        raise PartitioningError(
            "Failed to resolve partition. Invalid partition specified when publishing event: "
            + partition)
    return partition


@functools.lru_cache(maxsize=256)
def _partition_set(partition_count: int) -> frozenset[str]:
    return frozenset(str(i) for i in range(partition_count))


# --- hash -----------------------------------------------------------------------

def partition_keys(event: Mapping[str, object], key_fields: Sequence[str], category: str) -> list[str]:
    """The strings Nakadi hashes for `event`, one per key field, in order;
    joined with "," they are also the event's key."""
    paths = _paths(tuple(key_fields), category)
    if not paths:
        raise PartitioningError("Cannot extract partition keys: partition key fields not set!")
    keys = []
    for path in paths:
        value: object = event
        for field in path:
            if not isinstance(value, dict) or field not in value:
                raise MissingKeyFieldError(f"field {field} doesn't exist.")
            value = value[field]
        keys.append(java_to_string(value))
    return keys


def hash_partition(keys: Sequence[str], partition_count: int) -> str:
    """The partition of an event whose key strings are `keys`."""
    if not keys:
        raise PartitioningError("Cannot calculate hash value for partitioning: partition keys not set.")
    total = 0
    for key in keys:
        total = (total + java_string_hash(key)) & MASK
    signed = total - (1 << 32) if total >> 31 else total
    # abs(a % n) with Java's truncating % equals abs(a) % n; no int overflow here.
    return hash_order(partition_count)[abs(signed) % partition_count]


@functools.lru_cache(maxsize=256)
def hash_order(partition_count: int) -> tuple[str, ...]:
    """Partition ids sorted as strings: the list Nakadi indexes by hash."""
    return tuple(sorted(str(i) for i in range(partition_count)))


@functools.lru_cache(maxsize=1024)
def _paths(key_fields: tuple[str, ...], category: str) -> tuple[tuple[str, ...], ...]:
    prefix = DATA_PREFIX if category.lower() == "data" else ""
    return tuple(_tokens(prefix + field) for field in key_fields)


def _tokens(path: str) -> tuple[str, ...]:
    """Nakadi's JsonPathAccess tokenizer: '.' separates, single quotes group,
    backslash escapes; the path ends at its first empty token ("a..b" is "a")."""
    tokens = []
    pos = 0
    while pos < len(path):
        token = []
        quoted = escaped = False
        while pos < len(path):
            c = path[pos]
            pos += 1
            if escaped:
                token.append(c)
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == "'":
                quoted = not quoted
            elif c == "." and not quoted:
                break
            else:
                token.append(c)
        if not token:
            break
        tokens.append("".join(token))
    return tuple(tokens)


# --- org.json's toString ----------------------------------------------------------

def java_to_string(value: object) -> str:
    """What `toString()` prints for the org.json (20180130) value Nakadi's
    parser builds from `value`: strings bare, numbers as Java prints
    Integer/Long/Double, null as "null", objects and arrays as compact JSON
    with object keys in Java HashMap order.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return java_double(value)
    return _write(value)


def _write(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_to_string(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict):
        return "{" + ",".join(_quote(k) + ":" + _write(value[k]) for k in _hashmap_order(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_write(item) for item in value) + "]"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _hashmap_order(obj: Mapping[str, object]) -> list[str]:
    """Iteration order of a java.util.HashMap holding `obj`'s keys inserted in
    order: by bucket, then by insertion (exact unless 8 or more keys share a
    bucket of a table of 64 or more, where Java turns the bucket into a tree).
    """
    capacity = 16
    while len(obj) > capacity * 3 // 4:
        capacity *= 2

    def bucket(key: str) -> int:
        h = java_string_hash(key) & MASK
        return (h ^ (h >> 16)) & (capacity - 1)

    return sorted(obj, key=bucket)


def _quote(text: str) -> str:
    # org.json JSONObject.quote
    out = ['"']
    previous = ""
    for c in text:
        if c in '\\"':
            out.append("\\" + c)
        elif c == "/":
            out.append("\\/" if previous == "<" else "/")
        elif c in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[c])
        elif c < " " or "\u0080" <= c < "\u00a0" or "\u2000" <= c < "\u2100":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
        previous = c
    out.append('"')
    return "".join(out)


_SHORT_ESCAPES: Final = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _number_to_string(value: float) -> str:
    # org.json numberToString: Double.toString less trailing zeros and point.
    text = java_double(value)
    if "." in text and "E" not in text:
        text = text.rstrip("0").rstrip(".")
    return text


def java_double(value: float) -> str:
    """Java's `Double.toString` for a finite double, from the shortest
    round-tripping digits (JDK 19's algorithm; JDK 11, which Nakadi ran,
    prints a longer digit string for a few rare doubles).
    """
    if not math.isfinite(value):
        raise ValueError(f"{value} is not finite")
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exponent, int)
    point = len(digits) + exponent  # value = 0.DIGITS * 10**point
    if 1e-3 <= abs(value) < 1e7:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        whole, fraction = digits[:point].ljust(point, "0"), digits[point:]
        return f"{sign}{whole}.{fraction or '0'}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{point - 1}"
