"""Filters over real HTTP: a filtered subscription gets exactly the matching
events in order and its cursors and stats pass the others; a partition
where every event is filtered out still advances; the low-level stream
takes the same filters as a query parameter."""

import json
import urllib.parse

import httpx
import pytest

from tests.api.helpers import business_event, business_type
from tests.server import serving

pytestmark = pytest.mark.slow

KEEP = {"prefix": {"order_id": "keep-"}}


@pytest.fixture
def client(tmp_path):
    with serving(tmp_path, tmp_path / "data") as server:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            yield client


def publish(client, order_ids):
    events = [business_event(order_id) for order_id in order_ids]
    assert client.post("/event-types/order.created/events", json=events).status_code == 200


def subscribe(client, filters):
    response = client.post("/subscriptions", json={"owning_application": "shop", "event_types": ["order.created"],
                                                   "read_from": "begin", "filters": filters})
    assert response.status_code == 201, response.text
    return response.json()


def stream_and_commit(client, subscription_id, query):
    """Read one stream to its end, committing every cursor that moved; the lines."""
    lines, last = [], {}
    with client.stream("GET", f"/subscriptions/{subscription_id}/events?{query}") as response:
        assert response.status_code == 200
        stream_id = response.headers["X-Nakadi-StreamId"]
        for line in response.iter_lines():
            batch = json.loads(line)
            lines.append(batch)
            cursor = batch["cursor"]
            if cursor["offset"] == last.get(cursor["partition"], "001-0001--1"):
                continue  # a keep-alive that moved nothing: nothing to commit
            committed = client.post(f"/subscriptions/{subscription_id}/cursors", json={"items": [cursor]},
                                    headers={"X-Nakadi-StreamId": stream_id})
            assert committed.status_code == 204, committed.text
            last[cursor["partition"]] = cursor["offset"]
    return lines


def test_filtered_subscription_gets_the_matching_events_in_order_and_passes_the_others(client):
    assert client.post("/event-types", json=business_type()).status_code == 201
    order_ids = [f"{'keep' if i % 3 == 0 else 'drop'}-{i}" for i in range(30)]
    publish(client, order_ids)
    subscription = subscribe(client, [KEEP])
    assert subscription["filters"] == [KEEP]
    assert client.get(f"/subscriptions/{subscription['id']}").json()["filters"] == [KEEP]
    lines = stream_and_commit(client, subscription["id"],
                              "batch_limit=4&batch_flush_timeout=1&stream_keep_alive_limit=2&max_uncommitted_events=100")
    received = [e["order_id"] for line in lines for e in line.get("events", [])]
    assert received == [o for o in order_ids if o.startswith("keep-")]
    assert lines[-1]["cursor"]["offset"] == "001-0001-000000000000000029", "the cursor passed the last, filtered events"
    [stats] = client.get(f"/subscriptions/{subscription['id']}/stats").json()["items"]
    assert stats["partitions"][0]["unconsumed_events"] == 0


def test_filtered_partition_with_no_match_still_advances(client):
    assert client.post("/event-types", json=business_type()).status_code == 201
    publish(client, [f"drop-{i}" for i in range(10)])
    subscription = subscribe(client, [KEEP])
    lines = stream_and_commit(client, subscription["id"], "batch_flush_timeout=1&stream_keep_alive_limit=2")
    assert not any(line.get("events") for line in lines)
    assert lines[0]["cursor"]["offset"] == "001-0001-000000000000000009", "a keep-alive moved the cursor"
    cursors = client.get(f"/subscriptions/{subscription['id']}/cursors").json()["items"]
    assert cursors[0]["offset"] == "001-0001-000000000000000009"
    [stats] = client.get(f"/subscriptions/{subscription['id']}/stats").json()["items"]
    assert stats["partitions"][0]["unconsumed_events"] == 0


def test_filters_are_not_part_of_a_subscriptions_identity(client):
    assert client.post("/event-types", json=business_type()).status_code == 201
    first = subscribe(client, [KEEP])
    again = client.post("/subscriptions", json={"owning_application": "shop", "event_types": ["order.created"],
                                                "filters": [{"exact": {"order_id": "x"}}]})
    assert again.status_code == 200 and again.json()["id"] == first["id"] and again.json()["filters"] == [KEEP]


def test_low_level_stream_takes_filters_as_a_query_parameter(client):
    assert client.post("/event-types", json=business_type()).status_code == 201
    order_ids = [f"{'keep' if i % 2 else 'drop'}-{i}" for i in range(10)]
    publish(client, order_ids)
    query = urllib.parse.urlencode({"filters": json.dumps([KEEP]), "batch_limit": 2, "stream_limit": 5,
                                    "batch_flush_timeout": 1})
    with client.stream("GET", f"/event-types/order.created/events?{query}",
                       headers={"X-Nakadi-Cursors": '[{"partition":"0","offset":"BEGIN"}]'}) as response:
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.iter_lines()]
    assert [e["order_id"] for line in lines for e in line.get("events", [])] == order_ids[1::2]
    assert lines[-1]["cursor"]["offset"] == "001-0001-000000000000000009"


@pytest.mark.parametrize("filters", ["[{\"regex\": {\"a\": \"b\"}}]", "[{\"exact\": {}}]", "not json",
                                     "[{\"exact\": {\"a..b\": \"x\"}}]", "[{\"prefix\": {\"a\": 1}}]"])
def test_invalid_filters_are_422_on_both_streams(client, filters):
    assert client.post("/event-types", json=business_type()).status_code == 201
    query = urllib.parse.urlencode({"filters": filters})
    response = client.get(f"/event-types/order.created/events?{query}")
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")
    if filters != "not json":
        created = client.post("/subscriptions", json={"owning_application": "shop", "event_types": ["order.created"],
                                                      "filters": json.loads(filters)})
        assert created.status_code == 422 and created.json()["detail"].startswith("filters")
