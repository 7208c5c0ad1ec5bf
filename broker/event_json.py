"""The JSON of events: strict parsing of a published batch, and the compact
encoding events are stored and served in.

orjson parses and encodes (fast, strict: it rejects NaN and Infinity,
invalid UTF-8 and lone surrogates, and nesting past 1024 levels). It turns
integers beyond 64 bits into floats, though, so a body holding a run of 19
or more digits is parsed again with the standard library, which keeps
every integer exactly; encoding falls back the same way.
"""

from __future__ import annotations

import json
import re

import orjson

from .errors import InvalidRequestError

_LONG_DIGITS = re.compile(rb"\d{19}")
PARSE_ERROR = "Error occurred when parsing event(s). "


def parse_batch(body: bytes) -> list[dict]:
    """The events of a publish body: a JSON array of JSON objects, else 400."""
    try:
        value = orjson.loads(body)
        if _LONG_DIGITS.search(body):
            value = json.loads(body)
    except (orjson.JSONDecodeError, RecursionError, ValueError) as e:
        raise InvalidRequestError(PARSE_ERROR + _reason(e)) from e
    if not isinstance(value, list):
        raise InvalidRequestError(PARSE_ERROR + "The body must be a JSON array of events.")
    for i, event in enumerate(value):
        if not isinstance(event, dict):
            raise InvalidRequestError(PARSE_ERROR + f"Event at index {i} is not a JSON object.")
    return value


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
