"""Seeding at start-up (`nakadi serve --seed FILE`): event types and
subscriptions a file lists, created idempotently.

The document is `{"event_types": [...], "subscriptions": [...]}`, each item
a body as `POST /event-types` or `POST /subscriptions` takes it. An event
type that already exists is left as it is (not compared, not updated); a
subscription is found by its key (owning application, event types,
consumer group) as a POST finds it, so starting twice creates nothing new.
Event types come first, so subscriptions may read them.
"""

from __future__ import annotations

from .broker import Broker
from .errors import BrokerError, InvalidRequestError, NotFoundError

SEED_KEYS = ("event_types", "subscriptions")
SEED_ITEMS_MAX = 10_000


async def apply_seed(broker: Broker, document: object) -> list[str]:
    """Create what `document` lists and is missing; one line per item saying
    what happened. A `BrokerError` names the item that failed."""
    event_types, subscriptions = _parse(document)
    done = []
    for i, body in enumerate(event_types):
        name = body.get("name")
        if isinstance(name, str) and _exists(broker, name):
            done.append(f"event type {name} exists, left as it is")
            continue
        try:
            await broker.create_event_type(body)
        except BrokerError as error:
            raise BrokerError(f"event_types[{i}] ({name}): {error.detail}") from error
        done.append(f"event type {name} created")
    for i, body in enumerate(subscriptions):
        try:
            subscription, created = await broker.create_subscription(body)
        except BrokerError as error:
            raise BrokerError(f"subscriptions[{i}]: {error.detail}") from error
        done.append(f"subscription {subscription['id']} " + ("created" if created else "exists"))
    return done


def _parse(document: object) -> tuple[list[dict], list[dict]]:
    if not isinstance(document, dict):
        raise InvalidRequestError('a seed is a JSON object {"event_types": [...], "subscriptions": [...]}')
    unknown = sorted(set(document) - set(SEED_KEYS))
    if unknown:
        raise InvalidRequestError(f"unknown key {unknown[0]!r} in the seed; expected {' and '.join(SEED_KEYS)}")
    lists = []
    for key in SEED_KEYS:
        items = document.get(key, [])
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise InvalidRequestError(f"{key} in the seed must be a list of JSON objects")
        if len(items) > SEED_ITEMS_MAX:
            raise InvalidRequestError(f"{key} in the seed has {len(items)} items, more than {SEED_ITEMS_MAX}")
        lists.append(items)
    return lists[0], lists[1]


def _exists(broker: Broker, name: str) -> bool:
    try:
        broker.get_event_type(name)
    except NotFoundError:
        return False
    return True
