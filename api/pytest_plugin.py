"""The pytest plugin (entry point `pytest11`, loaded wherever nakadi is
installed): the `nakadi_server` fixture, a real broker for one test.

    def test_orders_are_published(nakadi_server):
        nakadi_server.create_event_type("orders.created", schema={"type": "object"})
        my_service.run(nakadi_url=nakadi_server.url)  # publishes order o-1
        assert [e["order_id"] for e in nakadi_server.read("orders.created")] == ["o-1"]

Each test gets its own broker (`api.embedded.EmbeddedBroker`) on a free
port of 127.0.0.1 with a temporary data directory, stopped after the test.
The helpers speak the REST API over HTTP like any client, so what a test
sees is what a service sees.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REQUEST_SECONDS = 30


class NakadiServer:
    """A running broker: its `url`, and helpers over its REST API."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.data_dir = data_dir
        self.http = httpx.Client(base_url=url, timeout=REQUEST_SECONDS)

    def create_event_type(self, name: str, *, schema: dict[str, Any] | None = None, category: str = "business",
                          partitions: int = 1, **fields: Any) -> dict[str, Any]:
        """Create an event type (any other field of the definition as a
        keyword); its definition as stored."""
        body = {"name": name, "owning_application": "tests", "category": category,
                "enrichment_strategies": [] if category == "undefined" else ["metadata_enrichment"],
                "partition_strategy": "random",
                "schema": {"type": "json_schema", "schema": json.dumps(schema or {"type": "object"})},
                "default_statistic": {"messages_per_minute": 60, "message_size": 100,
                                      "read_parallelism": partitions, "write_parallelism": partitions},
                **fields}
        self._check(self.http.post("/event-types", json=body))
        return self._check(self.http.get(f"/event-types/{name}")).json()

    def publish(self, name: str, events: list[dict[str, Any]]) -> None:
        """Publish `events` as one batch (`business_event` builds one with
        its metadata); raises unless the answer is 200."""
        self._check(self.http.post(f"/event-types/{name}/events", json=events))

    def read(self, name: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        """The events of every partition of `name` from the beginning, up to
        `limit` (without waiting for more)."""
        partitions = self._check(self.http.get(f"/event-types/{name}/partitions")).json()
        cursors = [{"partition": p["partition"], "offset": "BEGIN"} for p in partitions]
        response = self._check(self.http.get(
            f"/event-types/{name}/events", headers={"X-Nakadi-Cursors": json.dumps(cursors)},
            params={"stream_timeout": 1, "batch_flush_timeout": 1, "stream_limit": limit,
                    "batch_limit": min(limit, 1000)}))
        events: list[dict[str, Any]] = []
        for line in response.text.splitlines():
            events += json.loads(line).get("events", [])
        return events

    def close(self) -> None:
        self.http.close()

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 300:
            raise AssertionError(f"{response.request.method} {response.request.url.path} answered "
                                 f"{response.status_code}: {response.text[:1000]}")
        return response


def business_event(**fields: Any) -> dict[str, Any]:
    """A business event with a fresh `metadata.eid` and an `occurred_at`."""
    return {"metadata": {"eid": str(uuid.uuid4()), "occurred_at": "2024-01-01T00:00:00Z"}, **fields}


@pytest.fixture
def nakadi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NakadiServer]:
    """A real broker on a free port of 127.0.0.1 with its own data directory."""
    from .embedded import EmbeddedBroker  # the broker loads only for tests that use it

    data_dir = tmp_path_factory.mktemp("nakadi")
    with EmbeddedBroker(data_dir) as broker:
        server = NakadiServer(broker.url, data_dir)
        try:
            yield server
        finally:
            server.close()
