"""Publishing through the app: status codes, item responses, what is stored."""

import gzip

import orjson

from .helpers import business_event, business_type


async def setup(client, **kwargs):
    assert (await client.post("/event-types", json=business_type(**kwargs))).status_code == 201


async def read_partition(broker, name, partition=0):
    runs = await broker._logs.read_runs(name, partition, 0, 1000, 1 << 20)
    return [orjson.loads(payload) for run in runs for payload in run.payloads]


async def test_publish_valid_batch_is_200_empty_and_events_are_enriched(client, broker):
    await setup(client)
    response = await client.post("/event-types/order.created/events", json=[business_event("a"), business_event("b")],
                                 headers={"X-Flow-Id": "flow-1"})
    assert response.status_code == 200 and await response.get_data() == b""
    stored = await read_partition(broker, "order.created")
    assert [e["order_id"] for e in stored] == ["a", "b"]
    metadata = stored[0]["metadata"]
    assert metadata["event_type"] == "order.created" and metadata["flow_id"] == "flow-1"
    assert metadata["version"] == "1.0.0" and metadata["published_by"] == "unauthenticated"
    assert metadata["partition"] == "0" and metadata["received_at"].endswith("Z")


async def test_publish_invalid_event_is_422_with_items_and_nothing_stored(client, broker):
    await setup(client)
    events = [business_event("a"), business_event(7), business_event("c")]
    response = await client.post("/event-types/order.created/events", json=events)
    assert response.status_code == 422
    items = await response.get_json()
    assert [(i["publishing_status"], i["step"]) for i in items] == [
        ("aborted", "validating"), ("failed", "validating"), ("aborted", "none")]
    assert items[1]["eid"] == events[1]["metadata"]["eid"] and items[1]["detail"]
    assert await read_partition(broker, "order.created") == []


async def test_publish_server_set_metadata_from_the_producer_is_rejected(client):
    await setup(client)
    event = business_event("a")
    event["metadata"]["received_at"] = "2024-01-01T00:00:00.000Z"
    response = await client.post("/event-types/order.created/events", json=[event])
    assert response.status_code == 422


async def test_publish_bad_bodies_are_400_problems(client):
    await setup(client)
    for body in (b"", b"{}", b"[1]", b"[NaN]", b"[{\"a\":1}"):
        response = await client.post("/event-types/order.created/events", data=body,
                                     headers={"Content-Type": "application/json"})
        assert response.status_code == 400, body
        assert response.mimetype == "application/problem+json"


async def test_publish_to_unknown_event_type_is_404(client):
    response = await client.post("/event-types/nope/events", json=[business_event()])
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


async def test_publish_gzip_body_is_inflated_and_a_bomb_is_413(client, broker):
    await setup(client)
    body = gzip.compress(orjson.dumps([business_event("z")]))
    response = await client.post("/event-types/order.created/events", data=body,
                                 headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert [e["order_id"] for e in await read_partition(broker, "order.created")] == ["z"]
    bomb = gzip.compress(b"[" + b" " * (1 << 20) + b"]")
    response = await client.post("/event-types/order.created/events", data=bomb,
                                 headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 413 and response.mimetype == "application/problem+json"


async def test_publish_body_over_the_limit_is_413(client):
    await setup(client)
    response = await client.post("/event-types/order.created/events", data=b"[" + b" " * (70 * 1024) + b"]",
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.mimetype == "application/problem+json"


async def test_publish_big_integers_are_kept_exactly(client, broker):
    await client.post("/event-types", json={"name": "raw", "owning_application": "a", "category": "undefined",
                                            "schema": {"type": "json_schema", "schema": "{}"}})
    body = b'[{"n": 123456789012345678901234567890}]'
    response = await client.post("/event-types/raw/events", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    runs = await broker._logs.read_runs("raw", 0, 0, 10, 1 << 20)
    assert runs[0].payloads[0] == b'{"n":123456789012345678901234567890}'


async def test_publish_hash_partitioning_is_stable_per_key(client, broker):
    await setup(client, partitions=4)
    await client.post("/event-types/order.created/events", json=[business_event(f"k{i % 3}") for i in range(30)])
    seen = {}
    for partition in range(4):
        for event in await read_partition(broker, "order.created", partition):
            seen.setdefault(event["order_id"], set()).add(event["metadata"]["partition"])
            assert event["metadata"]["partition"] == str(partition)
    assert all(len(partitions) == 1 for partitions in seen.values()) and len(seen) == 3


async def test_publish_deleted_events_are_refused_for_non_compacted_types(client, broker):
    await setup(client)
    event = business_event("a")
    response = await client.post("/event-types/order.created/deleted-events", json=[event])
    assert response.status_code == 422
    assert await response.get_json() == [{"eid": event["metadata"]["eid"], "partition": None,
                                          "publishing_status": "aborted", "step": "none", "detail": ""}]
    assert await read_partition(broker, "order.created") == []
    assert (await client.post("/event-types/nope/deleted-events", json=[event])).status_code == 404


async def test_publish_compacted_event_types_are_refused_clearly(client):
    response = await client.post("/event-types", json=business_type(cleanup_policy="compact"))
    assert response.status_code == 422
    assert "compaction is not implemented" in (await response.get_json())["detail"]
