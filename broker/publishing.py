"""Publishing a batch: Nakadi's pipeline and its `BatchItemResponse` rules.

The body is parsed (a 400 when it is not a JSON array of objects), then
the phases run over the whole batch in order, as Nakadi's EventPublisher
does: validating (schema, then size), partitioning, enriching. The first
failure stops everything and nothing is written: the failing event is
`failed` at its step, the others `aborted` at the step they had reached
(`none` if none). Then each partition's events are appended, in batch
order, all partitions at once; events of an append that fails are `failed`
at `publishing` while the others are `submitted` (207). When every
partition failed because the disk is full, the publish is a 507.

The target is anything with the `PublishTarget` attributes, so the
pipeline stays free of how event types are stored.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


from . import event_json
from .enrichment import enrich, received_at
from .errors import BrokerError, InsufficientStorageError

EVENT_BYTES_MAX = 999_000


class Step(enum.Enum):
    NONE = "none"
    VALIDATING = "validating"
    PARTITIONING = "partitioning"
    ENRICHING = "enriching"
    PUBLISHING = "publishing"


class ItemFailure(Exception):
    """One event failed at the current step; `detail` says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PublishTarget(Protocol):
    """What publishing needs of an event type."""

    name: str
    category: str
    version: str

    def all_valid(self, events: list[dict]) -> bool:
        """True when every event matches the effective schema; False when
        some may not (`validate` tells which)."""

    def validate(self, event: dict) -> str | None:
        """Why the event does not match the effective schema, or None."""

    def partitions_of(self, events: list[dict]) -> list[str] | None:
        """The partition ids of valid events, found at once; None when
        `partition_of` must go one by one (some event may have none)."""

    def partition_of(self, event: dict) -> str:
        """The partition id of a valid event; `ItemFailure` if it has none."""


# Appends each partition's payloads (by partition id); the partitions whose
# append failed, with why.
Append = Callable[[dict[str, list[bytes]]], Awaitable[dict[str, BrokerError]]]


@dataclass
class Item:
    eid: str
    step: Step = Step.NONE
    status: str = "aborted"
    detail: str = ""
    partition: str | None = None

    def to_json(self) -> dict:
        return {"eid": self.eid, "partition": self.partition, "publishing_status": self.status,
                "step": self.step.value, "detail": self.detail}


@dataclass(frozen=True)
class PublishOutcome:
    """200 when `items` is None; otherwise 207 or 422 with one item per event."""

    status: int
    items: list[dict] | None = None


async def publish(target: PublishTarget, body: bytes, append: Append, *, flow_id: str,
                  published_by: str, now_ms: int) -> PublishOutcome:
    """Parse the batch in `body` and run the pipeline over its events,
    appending each partition's payloads with one `append` call."""
    events = event_json.parse_batch(body)
    if not events:
        return PublishOutcome(200)
    # An event is as large as Nakadi counts it: its text as sent. In a body
    # no larger than the limit, none can be too large.
    sizes = event_json.sizes(body) if len(body) > EVENT_BYTES_MAX else None
    undefined = target.category == "undefined"
    checked = target.all_valid(events)
    payloads = _encoded(events) if undefined else None
    if not checked or _any_unstorable(payloads, sizes):
        for i, event in enumerate(events):
            problem = None if checked else target.validate(event)
            if problem is None:
                problem = _unstorable(payloads[i] if payloads else b"", sizes[i] if sizes else 0)
            if problem is not None:
                return _rejected(events, Step.VALIDATING, i, problem, [])
    partitions = target.partitions_of(events)
    if partitions is None:
        partitions = []
        for i, event in enumerate(events):
            try:
                partitions.append(target.partition_of(event))
            except ItemFailure as failure:
                return _rejected(events, Step.PARTITIONING, i, failure.detail, partitions)
    if not undefined:
        enrich(events, partitions, event_type=target.name, version=target.version, published_by=published_by,
               flow_id=flow_id, received_at_text=received_at(now_ms))
        payloads = _encoded(events)
        for i, payload in enumerate(payloads):
            if isinstance(payload, str):
                return _rejected(events, Step.ENRICHING, i, payload, partitions)
    # Freed now, while in the CPU's cache, rather than after the fsync.
    del events
    return await _append_all(partitions, payloads, append)  # type: ignore[arg-type]


def _encoded(events: list[dict]) -> list[bytes | str]:
    """Each event's compact JSON, or why it cannot be encoded."""
    try:
        return list(event_json.encode_all(events))
    except ValueError:
        pass
    payloads: list[bytes | str] = []
    for event in events:
        try:
            payloads.append(event_json.encode(event))
        except ValueError as e:
            payloads.append(str(e))
    return payloads


def _any_unstorable(payloads: list[bytes | str] | None, sizes: list[int] | None) -> bool:
    if payloads is not None and any(isinstance(payload, str) for payload in payloads):
        return True
    return sizes is not None and max(sizes) > EVENT_BYTES_MAX


def _unstorable(payload: bytes | str, size: int) -> str | None:
    """Why an event of this encoding (or b"") and size cannot be stored, or None."""
    if isinstance(payload, str):
        return payload
    if size > EVENT_BYTES_MAX:
        return f"Event too large: {size} bytes, max size is {EVENT_BYTES_MAX} bytes"
    return None


_STEP_BEFORE = {Step.VALIDATING: Step.NONE, Step.PARTITIONING: Step.VALIDATING, Step.ENRICHING: Step.PARTITIONING}


def _rejected(events: list[dict], step: Step, failed: int, detail: str, partitions: list[str]) -> PublishOutcome:
    """422: the event at `failed` failed at `step`; those before it are
    aborted at `step`, those after at the step they had reached."""
    items = []
    for i, event in enumerate(events):
        item = Item(eid_of(event), step if i <= failed else _STEP_BEFORE[step],
                    partition=partitions[i] if i < len(partitions) else None)
        if i == failed:
            item.status, item.detail = "failed", detail
        items.append(item.to_json())
    return PublishOutcome(422, items)


async def _append_all(partitions: list[str], payloads: list[bytes], append: Append) -> PublishOutcome:
    groups: dict[str, list[bytes]] = {}
    for partition, payload in zip(partitions, payloads, strict=True):
        groups.setdefault(partition, []).append(payload)
    failures = await append(groups)
    if not failures:
        return PublishOutcome(200)
    if len(failures) == len(groups) and all(isinstance(e, InsufficientStorageError) for e in failures.values()):
        raise next(iter(failures.values()))
    items = []
    for payload, partition in zip(payloads, partitions, strict=True):
        failure = failures.get(partition)
        item = Item(eid_of(event_json.parse_event(payload)), Step.PUBLISHING, partition=partition)
        item.status, item.detail = ("failed", failure.detail) if failure else ("submitted", "")
        items.append(item.to_json())
    return PublishOutcome(207, items)


def eid_of(event: dict) -> str:
    """The `metadata.eid` of an event, or "" when it has none."""
    metadata = event.get("metadata")
    eid = metadata.get("eid") if isinstance(metadata, dict) else None
    return eid if isinstance(eid, str) else ""
