"""The subscription's domain: the `Subscription` model, the rules a new
subscription must satisfy (`check_create`) and those an update must
satisfy (`check_update`).

Nothing here stores, fetches or reads a clock: the caller passes the
partitions of the event types and the time, and persists what comes back.
JSON is `subscription_json`'s job, the service `subscriptions`'. A broken
rule is a 422 (`UnprocessableError`) with Nakadi's message, checked in
Nakadi's order (`SubscriptionValidationService`), so the first broken rule
is the one Nakadi reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from . import cursors
from .errors import UnprocessableError

PARTITIONS_MAX_DEFAULT = 100  # nakadi.subscription.maxPartitions

# (start, end) of each partition of an event type, partition i at index i;
# None for an event type that does not exist.
Bounds = Sequence[tuple[int, int]]


class ReadFrom(StrEnum):
    BEGIN = "begin"
    END = "end"
    CURSORS = "cursors"


@dataclass(frozen=True)
class Subscription:
    """A subscription. As parsed from a request, `id` is "" and the times are
    None; a stored one has them all.

    `event_types` is sorted without duplicates (Nakadi keeps a sorted set).
    `initial_cursors` holds `{event_type, partition, offset}` dicts of
    strings as the client sent them, or None when it sent none (Nakadi
    treats that as an empty list). `authorization` is `{"admins": [...],
    "readers": [...]}` of `{data_type, value}` dicts, stored as given: this
    broker does not authorise yet. `annotations` and `labels` are None in
    a request that left them out. `filters` are the validated filter
    expressions (`filters.py`), None without any.
    """

    owning_application: str
    event_types: list[str]
    consumer_group: str = "default"
    read_from: str = ReadFrom.END.value
    initial_cursors: list[dict[str, str]] | None = None
    authorization: dict[str, list[dict[str, str]]] | None = None
    annotations: dict[str, str] | None = None
    labels: dict[str, str] | None = None
    filters: list[dict] | None = None
    id: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


def check_create(request: Subscription, bounds: Mapping[str, Bounds | None], *, id: str, now: datetime,
                 partitions_max: int = PARTITIONS_MAX_DEFAULT) -> Subscription:
    """`request` as stored when created at `now` with `id`. `bounds` has an
    entry for each of its event types. Raises `UnprocessableError` for the
    first rule it breaks."""
    missing = [name for name in request.event_types if bounds.get(name) is None]
    if missing:
        listed = "', '".join(missing)
        raise UnprocessableError(f"Failed to create subscription, event type(s) not found: '{listed}'")
    partition_count = sum(len(bounds[name] or ()) for name in request.event_types)
    if partition_count > partitions_max:
        raise UnprocessableError(f"total partition count for subscription is {partition_count}, "
                                 f"but the maximum partition count is {partitions_max}")
    if request.read_from == ReadFrom.CURSORS:
        _check_initial_cursors(request.initial_cursors or [], {name: bounds[name] or () for name in bounds})
    _check_authorization(request.authorization)
    now = _to_millis(now)
    return replace(request, id=id, created_at=now, updated_at=now,
                   annotations={} if request.annotations is None else request.annotations,
                   labels={} if request.labels is None else request.labels)


def check_update(old: Subscription, new: Subscription, *, now: datetime) -> Subscription:
    """The subscription stored after `new` (a parsed PUT body) replaces `old`:
    only `authorization`, `annotations` and `labels` may change; annotations
    and labels left out keep their stored value. Raises `UnprocessableError`."""
    for changed, what in ((new.consumer_group != old.consumer_group, "subscription consumer group"),
                          (new.event_types != old.event_types, "subscription event types"),
                          (new.owning_application != old.owning_application, "owning application"),
                          (new.read_from != old.read_from, "read from"),
                          ((new.initial_cursors or []) != (old.initial_cursors or []), "initial cursors"),
                          (new.filters is not None and new.filters != (old.filters or []), "filters")):
        if changed:
            raise UnprocessableError(f"Not allowed to change {what}")
    if old.authorization is not None and new.authorization is None:
        raise UnprocessableError("Changing authorization object to `null` is not possible due to existing one")
    _check_authorization(new.authorization)
    return replace(old, authorization=new.authorization,
                   annotations=old.annotations if new.annotations is None else new.annotations,
                   labels=old.labels if new.labels is None else new.labels, updated_at=_to_millis(now))


def _check_initial_cursors(initial: list[dict[str, str]], bounds: Mapping[str, Bounds]) -> None:
    # Partitions are compared as strings, as Nakadi's EventTypePartition does: "00" is not "0".
    partitions = {(name, partition) for name, of_type in bounds.items()
                  for partition in cursors.partition_ids(len(of_type))}
    given = [(c["event_type"], c["partition"]) for c in initial]
    if not partitions <= set(given):
        raise UnprocessableError("initial_cursors should contain cursors for all partitions of subscription")
    if not set(given) <= partitions:
        raise UnprocessableError("initial_cursors should contain cursors only for partitions of this subscription")
    if len(given) > len(partitions):
        raise UnprocessableError("there should be no more than 1 cursor for each partition in initial_cursors")
    for cursor in initial:
        event_type, partition = cursor["event_type"], cursor["partition"]
        start, end = bounds[event_type][int(partition)]
        try:
            offset = cursors.resolve(cursors.parse_offset(cursor["offset"]), start, end)
            cursors.require_available(partition, offset, start, end)
        except cursors.InvalidCursor as e:
            raise UnprocessableError(e.at(partition).detail(event_type)) from None


def _check_authorization(authorization: dict[str, list[dict[str, str]]] | None) -> None:
    if authorization is None:
        return
    problems = []
    for property_name, role in (("ADMIN", "admins"), ("READ", "readers")):
        attributes = [(a["data_type"], a["value"]) for a in authorization[role]]
        duplicates = list(dict.fromkeys(a for i, a in enumerate(attributes) if a in attributes[:i]))
        if duplicates:
            listed = ", ".join(f"{data_type}:{value}" for data_type, value in duplicates)
            problems.append(f"authorization property '{property_name}' contains duplicated attribute(s): {listed}")
    if problems:
        raise UnprocessableError("; ".join(problems))


def _to_millis(moment: datetime) -> datetime:
    # Stored times have Nakadi's precision, so a subscription reads back equal.
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
