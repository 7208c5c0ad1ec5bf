"""Partitions and cursor operations through the app."""

import json

from .helpers import business_event, business_type

FIRST = "001-0001-000000000000000000"
BEFORE_FIRST = "001-0001--1"


async def setup(client, events=0):
    await client.post("/event-types", json=business_type())
    if events:
        response = await client.post("/event-types/order.created/events",
                                     json=[business_event(f"o{i}") for i in range(events)])
        assert response.status_code == 200


async def test_partitions_of_an_empty_and_a_filled_event_type(client):
    await setup(client)
    assert await (await client.get("/event-types/order.created/partitions")).get_json() == [
        {"partition": "0", "oldest_available_offset": FIRST, "newest_available_offset": BEFORE_FIRST}]
    await client.post("/event-types/order.created/events", json=[business_event("a"), business_event("b")])
    view = await (await client.get("/event-types/order.created/partitions/0")).get_json()
    assert view["newest_available_offset"] == "001-0001-000000000000000001"
    lagged = await (await client.get("/event-types/order.created/partitions/0?consumed_offset=BEGIN")).get_json()
    assert lagged["unconsumed_events"] == 2


async def test_partitions_errors(client):
    await setup(client)
    assert (await client.get("/event-types/missing/partitions")).status_code == 404
    assert (await client.get("/event-types/order.created/partitions/7")).status_code == 404
    response = await client.get("/event-types/order.created/partitions/0?consumed_offset=nonsense")
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    response = await client.get("/event-types/order.created/partitions", query_string={"cursors": "not json"})
    assert response.status_code == 422


async def test_partitions_cursor_operations(client):
    await setup(client, events=2)
    lag = await (await client.post("/event-types/order.created/cursors-lag",
                                   json=[{"partition": "0", "offset": "BEGIN"}])).get_json()
    assert lag[0]["unconsumed_events"] == 2
    shifted = await client.post("/event-types/order.created/shifted-cursors",
                                json=[{"partition": "0", "offset": "BEGIN", "shift": 1}])
    assert await shifted.get_json() == [{"partition": "0", "offset": FIRST}]
    bad = await client.post("/event-types/order.created/shifted-cursors",
                            json=[{"partition": "0", "offset": "BEGIN", "shift": -1}])
    assert bad.status_code == 422
    distance = await client.post("/event-types/order.created/cursor-distances", json=[
        {"initial_cursor": {"partition": "0", "offset": "BEGIN"},
         "final_cursor": {"partition": "0", "offset": "001-0001-000000000000000001"}}])
    assert (await distance.get_json())[0]["distance"] == 2


async def test_partitions_cursor_query_adds_unconsumed_events(client):
    await setup(client, events=3)
    cursors = json.dumps([{"partition": "0", "offset": FIRST}])
    views = await (await client.get("/event-types/order.created/partitions",
                                    query_string={"cursors": cursors})).get_json()
    assert views[0]["unconsumed_events"] == 2
