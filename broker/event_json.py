"""The JSON of events: strict parsing of a published batch, and the compact
encoding events are stored and served in.

orjson parses and encodes (fast, strict: it rejects NaN and Infinity,
invalid UTF-8 and lone surrogates, and nesting past 1024 levels). It turns
integers beyond 64 bits into floats, though (and refuses those beyond a
double), so a body holding a run of 19 or more digits is checked by orjson
with those runs replaced by `0` (the syntax is unchanged) and then parsed
with the standard library, which keeps every integer exactly. Integers of
more than 4300 digits (Python's conversion limit) are refused with 422;
encoding falls back to the standard library the same way.
"""

from __future__ import annotations

import json
import math
import re

import orjson

from .errors import InvalidRequestError, UnprocessableError

_LONG_DIGITS = re.compile(rb"\d{19,}")
# A cheap test for a run of 19 digits: digits become "0", the rest " "
# (a regular expression search costs ten times more on large bodies).
_DIGITS_ONLY = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_NINETEEN_DIGITS = b"0" * 19
PARSE_ERROR = "Error occurred when parsing event(s). "


def parse_batch(body: bytes) -> list[dict]:
    """The events of a publish body: a JSON array of JSON objects, else 400."""
    exact = _NINETEEN_DIGITS in body.translate(_DIGITS_ONLY)
    try:
        value = orjson.loads(_LONG_DIGITS.sub(b"0", body) if exact else body)
        if exact:
            value = _parse_exactly(body)
    except (orjson.JSONDecodeError, RecursionError) as e:
        raise InvalidRequestError(PARSE_ERROR + _reason(e)) from e
    if not isinstance(value, list):
        raise InvalidRequestError(PARSE_ERROR + "The body must be a JSON array of events.")
    for i, event in enumerate(value):
        if not isinstance(event, dict):
            raise InvalidRequestError(PARSE_ERROR + f"Event at index {i} is not a JSON object.")
    return value


def _parse_exactly(body: bytes) -> object:
    try:
        return json.loads(body, parse_float=_finite_float)
    except json.JSONDecodeError as e:
        raise InvalidRequestError(PARSE_ERROR + str(e)) from e
    except ValueError as e:
        raise UnprocessableError(f"A number in the batch is out of range: {e}") from e


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise json.JSONDecodeError("number is infinity when parsed as double", text, 0)
    return number


def encode(value: object) -> bytes:
    """Compact JSON (no whitespace outside strings), integers kept exactly.

    Raises `ValueError` for a value nested too deeply to encode.
    """
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        except RecursionError as e:
            raise ValueError("the event is nested too deeply") from e


def _reason(error: Exception) -> str:
    if isinstance(error, RecursionError):
        return "The JSON is nested too deeply."
    return str(error)
