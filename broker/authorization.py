"""Who may do what: Nakadi's authorization lists on event types and
subscriptions, checked against the caller's subject.

An event type's `admins` may update and delete it (and change its lists),
its `writers` publish, its `readers` read (low-level streams, partitions,
cursor operations, and subscriptions over it). A subscription's `admins`
may update, delete and reset it, its `readers` stream, commit and read its
cursors and stats; streaming also needs read access to every event type
the subscription reads. A resource without an `authorization` section is
open to every subject; an attribute `{"data_type": "*", "value": "*"}`
lists every subject. Nakadi admins (from the configuration) pass every
admin check. With authentication off the subject is `unauthenticated` and
no list is enforced, as Nakadi's default authorization plugin allows all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import ForbiddenError
from .event_types import Authorization

WILDCARD = ("*", "*")


@dataclass(frozen=True)
class Subject:
    """An authenticated caller: `{data_type, value}` as in the lists."""

    data_type: str
    value: str
    admin: bool = False
    enforced: bool = True

    def listed_in(self, attributes: Iterable[tuple[str, str]]) -> bool:
        return any(attribute in (WILDCARD, (self.data_type, self.value)) for attribute in attributes)


# The subject of every request while authentication is off.
UNAUTHENTICATED = Subject("user", "unauthenticated", enforced=False)

# The operation Nakadi names in its 403 ("Access on READ event-type:x denied").
_OPERATIONS = {"admins": "ADMIN", "writers": "WRITE", "readers": "READ"}


def check_event_type(subject: Subject, name: str, authorization: Authorization | None, role: str) -> None:
    """403 unless `subject` may act as `role` ("admins", "writers",
    "readers") on the event type `name`."""
    if not subject.enforced or authorization is None or (role == "admins" and subject.admin):
        return
    if not subject.listed_in((a.data_type, a.value) for a in getattr(authorization, role)):
        raise ForbiddenError(f"Access on {_OPERATIONS[role]} event-type:{name} denied")


def check_subscription(subject: Subject, subscription_id: str,
                       authorization: Mapping[str, list[dict[str, str]]] | None, role: str) -> None:
    """403 unless `subject` may act as `role` ("admins", "readers") on the subscription."""
    if not subject.enforced or authorization is None or (role == "admins" and subject.admin):
        return
    attributes = ((a.get("data_type"), a.get("value")) for a in authorization.get(role, []))
    if not subject.listed_in(attributes):  # type: ignore[arg-type]
        raise ForbiddenError(f"Access on {_OPERATIONS[role]} subscription:{subscription_id} denied")
