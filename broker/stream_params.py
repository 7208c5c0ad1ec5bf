"""The parameters of a low-level stream (`GET /event-types/{name}/events`):
their defaults, how the query-string values are read, and which
combinations are refused.

Nakadi's rules (`EventStreamConfig.Builder` and Spring's binding of
`@RequestParam Integer` in `EventStreamController`):

- a value that is not a 32-bit integer is a 400; an empty value is absent;
- `batch_flush_timeout` 0 means the default, 30 s;
- `stream_timeout` 0, negative or above 4200 s is replaced by a random
  3000..4199 s (one hour plus or minus ten minutes), drawn even when the
  client sent nothing; so a `batch_flush_timeout` above 3000 without a
  `stream_timeout` can be refused, as in Nakadi;
- then, in this order, 422 when `stream_limit` is non-zero and below
  `batch_limit`, when `stream_timeout` is below `batch_flush_timeout`, when
  `batch_limit` is below 1.

Two refusals are ours: Nakadi accepts a negative `batch_flush_timeout` (and
then sends a keep-alive on every poll) and a negative
`stream_keep_alive_limit` (and then closes the stream at once); we answer
422 for both, worded like Nakadi's own texts.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .errors import InvalidRequestError, UnprocessableError

BATCH_FLUSH_TIMEOUT_S_DEFAULT = 30
STREAM_TIMEOUT_S_MAX = 4200
_STREAM_TIMEOUT_S_RANDOM = (3000, 4200)  # [low, high): Nakadi's 3600 + nextInt(1200) - 600

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_DECIMAL = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class StreamParams:
    """A valid low-level stream configuration; 0 means unlimited for the
    three limits. Build it with `parse_stream_params`."""

    stream_timeout_s: int
    batch_limit: int = 1
    stream_limit: int = 0
    batch_flush_timeout_s: int = BATCH_FLUSH_TIMEOUT_S_DEFAULT
    stream_keep_alive_limit: int = 0

    def __post_init__(self) -> None:
        assert self.batch_limit >= 1, self
        assert self.stream_limit == 0 or self.stream_limit >= self.batch_limit, self
        assert self.batch_flush_timeout_s >= 1, self
        assert self.batch_flush_timeout_s <= self.stream_timeout_s <= STREAM_TIMEOUT_S_MAX, self
        assert self.stream_keep_alive_limit >= 0, self


def random_stream_timeout_s(rng: random.Random) -> int:
    """Nakadi's default stream timeout: one hour plus or minus ten minutes."""
    return rng.randrange(*_STREAM_TIMEOUT_S_RANDOM)


def parse_stream_params(
    *,
    rng: random.Random,
    batch_limit: str | None = None,
    stream_limit: str | None = None,
    batch_flush_timeout: str | None = None,
    stream_timeout: str | None = None,
    stream_keep_alive_limit: str | None = None,
) -> StreamParams:
    """The stream parameters from the query-string values (None or "" when
    absent). Raises `InvalidRequestError` (400) for a value that is not an
    integer and `UnprocessableError` (422) for a refused combination, with
    Nakadi's texts. `rng` draws the stream timeout when none valid is given.
    """
    batch = _integer(batch_limit, 1)
    limit = _integer(stream_limit, 0)
    flush = _integer(batch_flush_timeout, BATCH_FLUSH_TIMEOUT_S_DEFAULT) or BATCH_FLUSH_TIMEOUT_S_DEFAULT
    timeout = _integer(stream_timeout, 0)
    keep_alive = _integer(stream_keep_alive_limit, 0)
    # Drawn before validation, as Nakadi's builder does, so a seeded rng
    # gives the same answer whatever the other values.
    if not 0 < timeout <= STREAM_TIMEOUT_S_MAX:
        timeout = random_stream_timeout_s(rng)

    if limit != 0 and limit < batch:
        raise UnprocessableError("stream_limit can't be lower than batch_limit")
    if timeout < flush:
        raise UnprocessableError("stream_timeout can't be lower than batch_flush_timeout")
    if batch < 1:
        raise UnprocessableError("batch_limit can't be lower than 1")
    if flush < 0:
        raise UnprocessableError("batch_flush_timeout can't be lower than 0")
    if keep_alive < 0:
        raise UnprocessableError("stream_keep_alive_limit can't be lower than 0")
    return StreamParams(
        stream_timeout_s=timeout, batch_limit=batch, stream_limit=limit,
        batch_flush_timeout_s=flush, stream_keep_alive_limit=keep_alive,
    )


def _integer(value: str | None, default: int) -> int:
    """A query value bound as Spring binds a Java `Integer`: empty means
    absent; otherwise a decimal within 32 bits, else 400."""
    if value is None or value == "":
        return default
    text = value.strip()
    if _DECIMAL.fullmatch(text):
        number = int(text)
        if _INT32_MIN <= number <= _INT32_MAX:
            return number
    # Spring's TypeMismatchException text, without its nested
    # ConversionFailedException clause (Java annotation names).
    raise InvalidRequestError(
        "Failed to convert value of type 'java.lang.String' to required type 'java.lang.Integer'; "
        f'nested exception is java.lang.NumberFormatException: For input string: "{text}"'
    )
