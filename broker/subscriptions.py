"""The subscriptions the broker serves: creating (idempotently), reading,
listing, updating and deleting them, backed by the metastore.

The metastore is the durable truth. Every subscription is also kept in
memory by id, loaded at start-up and changed only after the metastore
commit succeeded, so `get` (which streams call) never touches the disk.
Mutations are serialised by one lock; a create also runs under the
registry's lock (the caller's), so no event type disappears between its
check and the insert. Listing queries the metastore in a worker thread.

A subscription's `status` (with `show_status`) comes from `status_of`,
which the streaming side replaces; until then every partition is
unassigned.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Sequence
from urllib.parse import quote

import orjson
import trio

from . import cursors
from .errors import ConflictError, InvalidRequestError, NotFoundError
from .metastore import PAGE_OFFSET_MAX, Metastore, SubscriptionRow
from .subscription_json import from_json, parse_subscription, to_json
from .subscription_model import PARTITIONS_MAX_DEFAULT, Bounds, ReadFrom, Subscription, check_create, check_update

__all__ = ["BoundsOf", "LIST_LIMIT_MAX", "ReadFrom", "StatusOf", "Subscription", "Subscriptions", "list_link"]

LIST_LIMIT_MAX = 1000
LIST_PATH = "/subscriptions"

# The partitions' (start, end) of an event type, None if it does not exist.
BoundsOf = Callable[[str], Bounds | None]
# A subscription's `status`: [{event_type, partitions: [{partition, state, stream_id, ...}]}].
StatusOf = Callable[[Subscription], list[dict]]


class Subscriptions:
    """Subscriptions by id, backed by the metastore."""

    def __init__(self, metastore: Metastore, bounds_of: BoundsOf, *,
                 partitions_max: int = PARTITIONS_MAX_DEFAULT, status_of: StatusOf | None = None) -> None:
        self._metastore = metastore
        self._bounds_of = bounds_of
        self._partitions_max = partitions_max
        self._by_id = {s.id: s for s in (from_json(orjson.loads(d)) for d in metastore.all_subscriptions())}
        self._lock = trio.Lock()
        self.status_of: StatusOf = status_of or self.unassigned_status

    def get(self, subscription_id: str) -> Subscription:
        try:
            return self._by_id[subscription_id]
        except KeyError:
            raise NotFoundError(f"Subscription with id \"{subscription_id}\" does not exist") from None

    def get_json(self, subscription_id: str, *, show_status: bool = False) -> dict:
        subscription = self.get(subscription_id)
        return to_json(subscription, self.status_of(subscription) if show_status else None)

    async def create(self, body: object, now: datetime.datetime) -> tuple[Subscription, bool]:
        """The subscription with the key of `body`, and whether it was created
        now; an existing one is returned as stored, the rest of `body`
        ignored (the caller holds the registry's lock)."""
        request = parse_subscription(body)
        async with self._lock:
            existing = await trio.to_thread.run_sync(
                self._metastore.subscription_by_key, request.owning_application, request.event_types,
                request.consumer_group)
            if existing is not None:
                return self.get(orjson.loads(existing)["id"]), False
            bounds = {name: self._bounds_of(name) for name in request.event_types}
            subscription = check_create(request, bounds, id=str(uuid.uuid4()), now=now,
                                        partitions_max=self._partitions_max)
            document = to_json(subscription)
            row = SubscriptionRow(subscription.id, subscription.owning_application, tuple(subscription.event_types),
                                  subscription.consumer_group, orjson.dumps(document).decode(),
                                  document["created_at"])
            if not await trio.to_thread.run_sync(self._metastore.insert_subscription, row):
                raise ConflictError("Subscription with the same key properties already exists")
            self._by_id[subscription.id] = subscription
            return subscription, True

    async def update(self, subscription_id: str, body: object, now: datetime.datetime) -> Subscription:
        """Replace the authorization, annotations and labels of a subscription."""
        new = parse_subscription(body)
        async with self._lock:
            updated = check_update(self.get(subscription_id), new, now=now)
            stored = await trio.to_thread.run_sync(self._metastore.update_subscription, subscription_id,
                                                   orjson.dumps(to_json(updated)).decode())
            assert stored, "the metastore lost a subscription the broker knows"
            self._by_id[subscription_id] = updated
            return updated

    async def delete(self, subscription_id: str) -> None:
        """Forget a subscription and its committed cursors."""
        async with self._lock:
            self.get(subscription_id)
            deleted = await trio.to_thread.run_sync(self._metastore.delete_subscription, subscription_id)
            assert deleted, "the metastore lost a subscription the broker knows"
            del self._by_id[subscription_id]

    async def ids_reading(self, event_type: str) -> list[str]:
        """Ids of the subscriptions that read `event_type`."""
        return await trio.to_thread.run_sync(self._metastore.subscriptions_of, event_type)

    async def list(self, *, owning_application: str | None = None, event_types: Sequence[str] = (),
                   reader: str | None = None, show_status: bool = False, limit: int = 20,
                   offset: int = 0) -> dict:
        """A page of subscriptions, newest first, matching every filter given
        (`event_types`: reading all of them; `reader`: `data_type:value` in
        `authorization.readers`), with Nakadi's `_links` to the pages
        around it."""
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise InvalidRequestError(f"'limit' parameter should have value between 1 and {LIST_LIMIT_MAX}")
        if offset < 0:
            raise InvalidRequestError("'offset' parameter can't be lower than 0")
        if offset > PAGE_OFFSET_MAX:
            raise InvalidRequestError(f"'offset' parameter can't be greater than {PAGE_OFFSET_MAX}")
        reader_attribute = None if reader is None else _parse_reader(reader)
        names = list(dict.fromkeys(event_types))
        documents = await trio.to_thread.run_sync(
            lambda: self._metastore.subscriptions(owning_application=owning_application, event_types=names,
                                                  reader=reader_attribute, limit=limit, offset=offset))
        items = [orjson.loads(document) for document in documents]
        if show_status:
            for item in items:
                item["status"] = self.status_of(self._by_id.get(item["id"]) or from_json(item))
        links = {}
        filters = {"owning_application": owning_application, "event_types": names, "reader": reader_attribute,
                   "show_status": show_status, "limit": limit}
        if offset > 0:
            links["prev"] = {"href": list_link(offset=max(0, offset - limit), **filters)}
        if len(items) >= limit:
            links["next"] = {"href": list_link(offset=offset + len(items), **filters)}
        return {"items": items, "_links": links}

    def unassigned_status(self, subscription: Subscription) -> list[dict]:
        """Every partition unassigned, as Nakadi shows a subscription nobody
        streams: event types by name, partitions by id as text."""
        status = []
        for name in subscription.event_types:
            bounds = self._bounds_of(name) or ()
            partitions = sorted(cursors.partition_ids(len(bounds)))
            status.append({"event_type": name, "partitions": [
                {"partition": partition, "state": "unassigned", "stream_id": ""} for partition in partitions]})
        return status


def list_link(*, owning_application: str | None, event_types: Sequence[str], reader: tuple[str, str] | None,
              show_status: bool, offset: int, limit: int) -> str:
    """A page of the list, as Nakadi's `SubscriptionsUriHelper` writes it:
    the filters repeated, in its order. Values are percent-encoded where
    they would break the query (Nakadi writes them raw)."""
    query = [("event_type", name) for name in event_types]
    if reader is not None:
        query.append(("reader", f"{reader[0]}:{reader[1]}"))
    if owning_application is not None:
        query.append(("owning_application", owning_application))
    if show_status:
        query.append(("show_status", "true"))
    query += [("offset", str(offset)), ("limit", str(limit))]
    return LIST_PATH + "?" + "&".join(f"{name}={quote(value, safe=_QUERY_SAFE)}" for name, value in query)


_QUERY_SAFE = "-._~!$'()*,;:@/?"  # RFC 3986 query characters, less the separators & = +


def _parse_reader(text: str) -> tuple[str, str]:
    """`data_type:value`, split as Java's `String.split(":")` does (trailing
    empty parts dropped)."""
    if not text:
        raise InvalidRequestError("Authorization query is empty")
    parts = text.split(":")
    while parts and parts[-1] == "":
        parts.pop()
    if len(parts) != 2:
        raise InvalidRequestError("Authorization format is incorrect. Should be data_type:value")
    return parts[0], parts[1]
