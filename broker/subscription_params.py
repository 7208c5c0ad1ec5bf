"""The parameters of a subscription stream (`GET` query or `POST` body of
`/subscriptions/{id}/events`): defaults and refusals, as Nakadi's
`StreamParameters`.

- `batch_limit` 1; below 1 is a 422;
- `max_uncommitted_events` 10: events sent and not yet committed, over all
  partitions of the stream; below 1 is a 422 (ours: Nakadi then never
  sends anything);
- `stream_limit` 0 (unlimited): events sent; the stream closes once that
  many are committed;
- `batch_flush_timeout` 30 s; 0 means 0 (flush at once), as in Nakadi's
  code; negative is a 422 (ours);
- `stream_timeout` 0, negative or above 4200 s: a random 3000..4199 s;
- `stream_keep_alive_limit` 0 (unlimited);
- `commit_timeout` 60 s; 0 means 60; above 60 or negative is a 422.

Unlike the low-level stream, `stream_limit >= batch_limit` and
`stream_timeout >= batch_flush_timeout` are not enforced (Nakadi does not).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import InvalidRequestError, UnprocessableError
from .stream_params import BATCH_FLUSH_TIMEOUT_S_DEFAULT, STREAM_TIMEOUT_S_MAX, random_stream_timeout_s

COMMIT_TIMEOUT_S_MAX = 60
MAX_UNCOMMITTED_EVENTS_DEFAULT = 10
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class SubscriptionStreamParams:
    """A valid subscription stream configuration; 0 means unlimited for
    `stream_limit` and `stream_keep_alive_limit`."""

    stream_timeout_s: float
    batch_limit: int = 1
    max_uncommitted_events: int = MAX_UNCOMMITTED_EVENTS_DEFAULT
    stream_limit: int = 0
    batch_flush_timeout_s: float = BATCH_FLUSH_TIMEOUT_S_DEFAULT
    stream_keep_alive_limit: int = 0
    commit_timeout_s: float = COMMIT_TIMEOUT_S_MAX

    def __post_init__(self) -> None:
        assert self.batch_limit >= 1 and self.max_uncommitted_events >= 1, self
        assert self.stream_limit >= 0 and self.stream_keep_alive_limit >= 0, self
        assert self.batch_flush_timeout_s >= 0 and 0 < self.stream_timeout_s <= STREAM_TIMEOUT_S_MAX, self
        assert 0 < self.commit_timeout_s <= COMMIT_TIMEOUT_S_MAX, self


def parse_subscription_stream_params(values: dict[str, object], rng: random.Random) -> SubscriptionStreamParams:
    """The parameters from query-string values (strings) or a JSON body
    (numbers); absent, None and "" mean the default. 400 for a value that
    is not an integer, 422 for a refused one."""
    batch = _integer(values, "batch_limit", 1)
    uncommitted = _integer(values, "max_uncommitted_events", MAX_UNCOMMITTED_EVENTS_DEFAULT)
    limit = max(0, _integer(values, "stream_limit", 0))
    flush = _integer(values, "batch_flush_timeout", BATCH_FLUSH_TIMEOUT_S_DEFAULT)
    timeout = _integer(values, "stream_timeout", 0)
    keep_alive = max(0, _integer(values, "stream_keep_alive_limit", 0))
    commit = _integer(values, "commit_timeout", COMMIT_TIMEOUT_S_MAX)
    if not 0 < timeout <= STREAM_TIMEOUT_S_MAX:
        timeout = random_stream_timeout_s(rng)
    if batch < 1:
        raise UnprocessableError("batch_limit can't be lower than 1")
    if uncommitted < 1:
        raise UnprocessableError("max_uncommitted_events can't be lower than 1")
    if flush < 0:
        raise UnprocessableError("batch_flush_timeout can't be lower than 0")
    if commit > COMMIT_TIMEOUT_S_MAX:
        raise UnprocessableError(f"commit_timeout can not be more than {COMMIT_TIMEOUT_S_MAX}")
    if commit < 0:
        raise UnprocessableError("commit_timeout can not be less than 0")
    return SubscriptionStreamParams(
        stream_timeout_s=timeout, batch_limit=batch, max_uncommitted_events=uncommitted, stream_limit=limit,
        batch_flush_timeout_s=flush, stream_keep_alive_limit=keep_alive,
        commit_timeout_s=commit or COMMIT_TIMEOUT_S_MAX)


def _integer(values: dict[str, object], name: str, default: int) -> int:
    value = values.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidRequestError(f"{name} must be an integer")
    try:
        number = int(value.strip()) if isinstance(value, str) else value
    except ValueError:
        raise InvalidRequestError(f'{name} must be an integer, got "{value}"') from None
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise InvalidRequestError(f"{name} is out of range: {value}")
    return number
