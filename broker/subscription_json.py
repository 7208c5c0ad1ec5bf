"""A subscription's JSON: reading one from a request body (POST and PUT)
or a stored document, and writing it the way Nakadi serialises it.

Reading is Nakadi's binding of `SubscriptionBase` (`json_fields`): a wrong
JSON type or an unknown `read_from` is a 400; broken field constraints are
one 422 listing each, `Field "event_types" must contain at least one
element`. Event types are read as a set and kept sorted; unknown fields
are ignored; `consumer_group` defaults to "default", `read_from` to "end".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .filters import parse_filters
from .json_fields import LABEL_VALUE, FieldReader, time_json
from .subscription_model import ReadFrom, Subscription

# Nakadi's dead-letter annotations (DeadLetterAnnotationValidator).
MAX_EVENT_SEND_COUNT = "nakadi.zalando.org/subscription-max-event-send-count"
UNPROCESSABLE_EVENT_POLICY = "nakadi.zalando.org/subscription-unprocessable-event-policy"
UNPROCESSABLE_EVENT_POLICIES = ("SKIP_EVENT", "DEAD_LETTER_QUEUE")
_JAVA_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)  # what Integer.valueOf accepts, in ASCII


def parse_subscription(body: Any) -> Subscription:
    """The subscription in a request body (already parsed from JSON).
    Server-set fields (id, times, status) are ignored."""
    return _read(FieldReader(body), stored=False)


def from_json(document: Any) -> Subscription:
    """The inverse of `to_json`: a stored subscription, id and times included."""
    return _read(FieldReader(document), stored=True)


def _read(reader: FieldReader, *, stored: bool) -> Subscription:
    owning_application = reader.string("owning_application", required=True)
    if owning_application == "":
        reader.invalid("owning_application", "must contain at least one character")
    event_types = reader.strings("event_types", required=True)
    if reader.present("event_types") and not event_types:
        reader.invalid("event_types", "must contain at least one element")
    consumer_group = reader.string("consumer_group", required=True, default="default")
    if consumer_group == "":
        reader.invalid("consumer_group", "must contain at least one character")
    read_from = reader.enum("read_from", ReadFrom, required=True, default=ReadFrom.END)
    initial_cursors = [_read_cursor(cursor) for cursor in reader.children("initial_cursors")]
    annotations = reader.annotations("annotations", value_length_max=1000)
    if annotations is not None:
        problem = _dead_letter_problem(annotations)
        if problem is not None:
            reader.invalid("annotations", problem)
    labels = reader.annotations("labels", value_length_max=63, value_pattern=LABEL_VALUE)
    filters = parse_filters(reader.raw("filters")) if reader.present("filters") else None
    subscription = Subscription(
        owning_application=owning_application or "",
        event_types=sorted(set(event_types)),
        consumer_group=consumer_group or "",
        read_from=(read_from or ReadFrom.END).value,
        initial_cursors=initial_cursors or None,
        authorization=_read_authorization(reader.child("authorization")),
        annotations=None if annotations is None else dict(annotations),
        labels=None if labels is None else dict(labels),
        filters=None if filters is None else filters.expressions,
        id=(reader.string("id") or "") if stored else "",
        created_at=reader.time("created_at") if stored else None,
        updated_at=reader.time("updated_at") if stored else None,
    )
    reader.raise_if_invalid()
    return subscription


def _read_cursor(reader: FieldReader) -> dict[str, str]:
    # A missing value reads as "" after its problem is recorded; the request fails anyway.
    cursor = {"event_type": reader.string("event_type", required=True) or ""}
    for name in ("partition", "offset"):
        value = reader.string(name, required=True)
        if value == "":
            reader.invalid(name, f"cursor {name} cannot be empty")
        cursor[name] = value or ""
    return cursor


def _read_authorization(reader: FieldReader | None) -> dict[str, list[dict[str, str]]] | None:
    if reader is None:
        return None
    authorization: dict[str, list[dict[str, str]]] = {}
    for role in ("admins", "readers"):
        authorization[role] = [{"data_type": entry.string("data_type", required=True) or "",
                                "value": entry.string("value", required=True) or ""}
                               for entry in reader.children(role, required=True, at_least_one=True)]
    return authorization


def _dead_letter_problem(annotations: Mapping[str, str]) -> str | None:
    """The first failure of Nakadi's checks of the dead-letter annotations:
    the two come together, the count an integer from 2 to 10, the policy
    one of Nakadi's."""
    count, policy = annotations.get(MAX_EVENT_SEND_COUNT), annotations.get(UNPROCESSABLE_EVENT_POLICY)
    if count is not None:
        if not _JAVA_INT.fullmatch(count) or not -2**31 <= int(count) < 2**31:
            return f"{MAX_EVENT_SEND_COUNT} must be an integer"
        commits = int(count)
        if not 2 <= commits <= 10:
            return f"{MAX_EVENT_SEND_COUNT} must be between 2 and 10"
        if policy is None:
            return f"{UNPROCESSABLE_EVENT_POLICY} must be also set when setting {MAX_EVENT_SEND_COUNT}"
    if policy is not None:
        if policy not in UNPROCESSABLE_EVENT_POLICIES:
            return f"{UNPROCESSABLE_EVENT_POLICY} must be one of: {', '.join(UNPROCESSABLE_EVENT_POLICIES)}"
        if count is None:
            return f"{MAX_EVENT_SEND_COUNT} must be also set when setting {UNPROCESSABLE_EVENT_POLICY}"
    return None


def to_json(subscription: Subscription, status: list[dict] | None = None) -> dict[str, Any]:
    """The subscription as Nakadi serialises it: every field, in Nakadi's
    order (an absent `authorization` as null, no `initial_cursors` as []),
    times in UTC with milliseconds; `status` only when given."""
    s = subscription
    document: dict[str, Any] = {
        "owning_application": s.owning_application,
        "event_types": list(s.event_types),
        "consumer_group": s.consumer_group,
        "read_from": s.read_from,
        "initial_cursors": [dict(cursor) for cursor in s.initial_cursors or ()],
        "authorization": None if s.authorization is None else {
            role: [dict(attribute) for attribute in s.authorization[role]] for role in ("admins", "readers")},
        "annotations": None if s.annotations is None else dict(s.annotations),
        "labels": None if s.labels is None else dict(s.labels),
        "id": s.id,
        "created_at": time_json(s.created_at),
        "updated_at": time_json(s.updated_at),
    }
    if s.filters:
        document["filters"] = [dict(expression) for expression in s.filters]
    if status is not None:
        document["status"] = status
    return document
