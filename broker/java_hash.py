"""Java's `String.hashCode`, for one string and for many at once.

h = 31*h + unit over the UTF-16 code units, with 32-bit overflow, read as
a signed int. One string is hashed by a Python loop (1.3 us for a
20-character key); a batch of strings by numpy in a few array operations
(0.07 to 0.1 us per key).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Final

import numpy as np

MASK: Final = 0xFFFFFFFF
_UTF16: Final = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"
# Below this many strings, numpy's fixed cost per call (some microseconds)
# exceeds the loop's.
VECTOR_MIN: Final = 24
# Padding allowed beyond 4 times the text before a batch is hashed one by one.
_PADDING_SLACK: Final = 4096
_powers = np.ones(1, dtype=np.uint32)


def java_string_hash(text: str) -> int:
    """Java's `String.hashCode` of `text` (a signed 32-bit int)."""
    h = 0
    if text.isascii():
        for unit in text.encode("ascii"):
            h = (31 * h + unit) & MASK
    else:
        for unit in memoryview(text.encode(_UTF16, "surrogatepass")).cast("H"):
            h = (31 * h + unit) & MASK
    return h - (1 << 32) if h >> 31 else h


def java_string_hashes(texts: Sequence[str]) -> np.ndarray:
    """`java_string_hash` of each of `texts`, as an int32 array (worth it
    from `VECTOR_MIN` strings on).

    The strings are padded on the left with NUL units to a common width,
    which leaves their hashes unchanged (a leading zero adds 0 * 31^k), and
    the matrix of units is multiplied by the powers of 31. A batch so uneven
    that the padding would outweigh the text is hashed one string at a time.
    """
    lengths = list(map(len, texts))
    width = max(lengths, default=0)
    if len(texts) * width > 4 * sum(lengths) + _PADDING_SLACK:
        return np.array([java_string_hash(text) for text in texts], dtype=np.int32)
    joined = "".join([text.rjust(width, "\0") for text in texts])
    if joined.isascii():
        units = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    else:
        encoded = [text.encode(_UTF16, "surrogatepass") for text in texts]
        width = max(map(len, encoded)) // 2
        units = np.frombuffer(b"".join([e.rjust(2 * width, b"\0") for e in encoded]), dtype=np.uint16)
    weights = _powers_of_31(width)[:width][::-1]
    # uint32 arithmetic wraps modulo 2^32; the same bits read as int32 are Java's.
    return units.reshape(len(texts), width).dot(weights).view(np.int32)


def _powers_of_31(count: int) -> np.ndarray:
    """31^k modulo 2^32 for k below at least `count`."""
    global _powers
    if _powers.size < count:
        factors = np.full(max(count, 2 * _powers.size), 31, dtype=np.uint32)
        factors[0] = 1
        _powers = np.cumprod(factors, dtype=np.uint32)
    return _powers
