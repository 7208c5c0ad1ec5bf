"""Publishing a batch: Nakadi's pipeline and its `BatchItemResponse` rules.

The phases run over the whole batch in order, as Nakadi's EventPublisher
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import trio

from . import event_json
from .enrichment import enrich, received_at
from .errors import BrokerError, InsufficientStorageError

EVENT_BYTES_MAX = 999_000
T = TypeVar("T")


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

    def validate(self, event: dict) -> str | None:
        """Why the event does not match the effective schema, or None."""

    def partition_of(self, event: dict) -> str:
        """The partition id of a valid event; `ItemFailure` if it has none."""


Append = Callable[[int, Sequence[bytes]], Awaitable[int]]


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


async def publish(target: PublishTarget, events: list[dict], append: Append, *, flow_id: str,
                  published_by: str, now_ms: int) -> PublishOutcome:
    """Run the pipeline over `events`, appending with `append(partition, payloads)`."""
    if not events:
        return PublishOutcome(200)
    items = [Item(eid_of(event)) for event in events]
    payloads = _phase(items, Step.VALIDATING, events, lambda i, event: _validated(target, event))
    if payloads is None:
        return PublishOutcome(422, [item.to_json() for item in items])
    partitions = _phase(items, Step.PARTITIONING, events, lambda i, event: target.partition_of(event))
    if partitions is None:
        return PublishOutcome(422, [item.to_json() for item in items])
    for item, partition in zip(items, partitions):
        item.partition = partition
    if target.category != "undefined":
        stamp = received_at(now_ms)

        def enriched(i: int, event: dict) -> bytes:
            enrich(event, event_type=target.name, partition=partitions[i], version=target.version,
                   published_by=published_by, flow_id=flow_id, received_at_text=stamp)
            return event_json.encode(event)
        payloads = _phase(items, Step.ENRICHING, events, enriched)
        if payloads is None:
            return PublishOutcome(422, [item.to_json() for item in items])
    return await _append_all(items, partitions, payloads, append)


def _phase(items: list[Item], step: Step, events: list[dict], work: Callable[[int, dict], T]) -> list[T] | None:
    """`work` on every event in order; None (items marked) at the first failure."""
    results = []
    for i, (event, item) in enumerate(zip(events, items)):
        item.step = step
        try:
            results.append(work(i, event))
        except ItemFailure as failure:
            item.status, item.detail = "failed", failure.detail
            return None
    return results


def _validated(target: PublishTarget, event: dict) -> bytes:
    problem = target.validate(event)
    if problem is not None:
        raise ItemFailure(problem)
    try:
        payload = event_json.encode(event)
    except ValueError as e:
        raise ItemFailure(str(e)) from e
    if len(payload) > EVENT_BYTES_MAX:
        raise ItemFailure(f"Event too large: {len(payload)} bytes, max size is {EVENT_BYTES_MAX} bytes")
    return payload


async def _append_all(items: list[Item], partitions: list[str], payloads: list[bytes],
                      append: Append) -> PublishOutcome:
    groups: dict[str, list[int]] = {}
    for i, partition in enumerate(partitions):
        groups.setdefault(partition, []).append(i)
    failures: dict[str, BrokerError] = {}

    async def append_group(partition: str, indexes: list[int]) -> None:
        try:
            await append(int(partition), [payloads[i] for i in indexes])
        except BrokerError as e:
            failures[partition] = e

    async with trio.open_nursery() as nursery:
        for partition, indexes in groups.items():
            nursery.start_soon(append_group, partition, indexes)
    if not failures:
        return PublishOutcome(200)
    if len(failures) == len(groups) and all(isinstance(e, InsufficientStorageError) for e in failures.values()):
        raise next(iter(failures.values()))
    for item in items:
        item.step = Step.PUBLISHING
        failure = failures.get(item.partition or "")
        item.status, item.detail = ("failed", failure.detail) if failure else ("submitted", "")
    return PublishOutcome(207, [item.to_json() for item in items])


def eid_of(event: dict) -> str:
    """The `metadata.eid` of an event, or "" when it has none."""
    metadata = event.get("metadata")
    eid = metadata.get("eid") if isinstance(metadata, dict) else None
    return eid if isinstance(eid, str) else ""
