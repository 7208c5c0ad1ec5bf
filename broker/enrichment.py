"""Metadata enrichment: what `metadata_enrichment` writes into each event.

As Nakadi's MetadataEnrichmentStrategy: `received_at`, `event_type`,
`partition`, `version` and `published_by` are set, `flow_id` only when the
producer left it missing or empty. Keys the producer sent keep their
place; new keys are appended, so the stored JSON keeps the producer's order.
"""

from __future__ import annotations

import datetime
import functools


@functools.lru_cache(maxsize=1)  # publishes within the same millisecond share it
def received_at(ms: int) -> str:
    """UTC ISO-8601 with milliseconds, as Nakadi writes `received_at`."""
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def enrich(events: list[dict], partitions: list[str], *, event_type: str, version: str, published_by: str,
           flow_id: str, received_at_text: str) -> None:
    """Enrich each event's `metadata` in place (validation made sure it is
    an object), with the event's partition."""
    for event, partition in zip(events, partitions, strict=True):
        metadata = event["metadata"]
        metadata["received_at"] = received_at_text
        metadata["event_type"] = event_type
        if not metadata.get("flow_id"):
            metadata["flow_id"] = flow_id
        metadata["partition"] = partition
        metadata["version"] = version
        metadata["published_by"] = published_by
