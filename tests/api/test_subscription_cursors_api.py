"""Subscription cursors, resets, stats and stream parameters through the
app (no stream is read here: the e2e tests stream over real HTTP)."""

import datetime

import pytest
import trio
import trio.testing

from broker.errors import ConflictError

from .helpers import business_event, business_type

ET = "order.created"


@pytest.fixture
def clock():
    # Jumps after 10 ms of real time with every task blocked, so worker threads mostly finish first.
    return trio.testing.MockClock(autojump_threshold=0.01)


@pytest.fixture
async def subscription(client):
    assert (await client.post("/event-types", json=business_type(partitions=2))).status_code == 201
    events = [business_event(f"o{i}") for i in range(6)]
    assert (await client.post(f"/event-types/{ET}/events", json=events)).status_code == 200
    response = await client.post("/subscriptions", json={"owning_application": "shop", "event_types": [ET],
                                                         "read_from": "begin"})
    return (await response.get_json())["id"]


async def problem(response, status):
    assert response.status_code == status, await response.get_data()
    assert response.mimetype == "application/problem+json"
    return (await response.get_json())["detail"]


async def cursors(client, subscription):
    response = await client.get(f"/subscriptions/{subscription}/cursors")
    assert response.status_code == 200
    return {(c["event_type"], c["partition"]): c["offset"] for c in (await response.get_json())["items"]}


async def ends(client):
    partitions = await (await client.get(f"/event-types/{ET}/partitions")).get_json()
    return {p["partition"]: p["newest_available_offset"] for p in partitions}


async def test_cursors_are_empty_until_the_first_reset_fixes_read_from(client, subscription):
    assert await cursors(client, subscription) == {}
    assert (await client.patch(f"/subscriptions/{subscription}/cursors", json={"items": []})).status_code == 204
    assert await cursors(client, subscription) == {(ET, "0"): "001-0001--1", (ET, "1"): "001-0001--1"}
    response = await client.get(f"/subscriptions/{subscription}/cursors")
    assert all(len(c["cursor_token"]) == 36 for c in (await response.get_json())["items"])


async def test_reset_moves_listed_partitions_to_offsets_end_and_timestamps(client, subscription):
    newest = await ends(client)
    items = [{"event_type": ET, "partition": "0", "offset": "END"},
             {"event_type": ET, "partition": "1", "offset": "BEGIN"}]
    assert (await client.patch(f"/subscriptions/{subscription}/cursors", json={"items": items})).status_code == 204
    assert await cursors(client, subscription) == {(ET, "0"): newest["0"], (ET, "1"): "001-0001--1"}
    past = {"event_type": ET, "partition": "0", "timestamp": "2000-01-01T00:00:00Z"}
    assert (await client.patch(f"/subscriptions/{subscription}/cursors", json={"items": [past]})).status_code == 204
    assert (await cursors(client, subscription))[(ET, "0")] == "001-0001--1"
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    later = {"event_type": ET, "partition": "0", "timestamp": future.isoformat()}
    assert (await client.patch(f"/subscriptions/{subscription}/cursors", json={"items": [later]})).status_code == 204
    assert (await cursors(client, subscription))[(ET, "0")] == newest["0"]


@pytest.mark.parametrize(("item", "detail"), [
    ({"event_type": "other", "partition": "0", "offset": "BEGIN"}, "Event type other is not in subscription"),
    ({"event_type": ET, "partition": "7", "offset": "BEGIN"}, "non existing partition 7"),
    ({"event_type": ET, "partition": "0", "offset": "x"}, "invalid offset x for partition 0"),
    ({"event_type": ET, "partition": "0", "offset": "001-0001-000000000000000999"}, "offset 000000000000000999"),
    ({"event_type": ET, "partition": "0", "timestamp": "yesterday"}, "timestamp yesterday is not"),
    ({"event_type": ET, "partition": "0"}, "offset must not be null"),
])
async def test_reset_refuses_bad_cursors_with_422(client, subscription, item, detail):
    response = await client.patch(f"/subscriptions/{subscription}/cursors", json={"items": [item]})
    assert detail in await problem(response, 422)


async def test_commit_without_a_live_stream_or_cursors_is_422(client, subscription):
    cursor = {"event_type": ET, "partition": "0", "offset": "001-0001-000000000000000000", "cursor_token": "t"}
    response = await client.post(f"/subscriptions/{subscription}/cursors", json={"items": [cursor]},
                                 headers={"X-Nakadi-StreamId": "nope"})
    assert await problem(response, 422) == "Session with stream id nope not found"
    response = await client.post(f"/subscriptions/{subscription}/cursors", json={"items": []},
                                 headers={"X-Nakadi-StreamId": "nope"})
    assert await problem(response, 422) == "Cursors are empty"
    response = await client.post(f"/subscriptions/{subscription}/cursors", json=[cursor])
    await problem(response, 400)


async def test_stats_before_and_after_initialisation(client, subscription):
    response = await client.get(f"/subscriptions/{subscription}/stats")
    [item] = (await response.get_json())["items"]
    assert item == {"event_type": ET, "partitions": [{"partition": "0", "state": "unassigned", "stream_id": ""},
                                                     {"partition": "1", "state": "unassigned", "stream_id": ""}]}
    assert (await client.patch(f"/subscriptions/{subscription}/cursors", json={"items": []})).status_code == 204
    response = await client.get(f"/subscriptions/{subscription}/stats?show_time_lag=true")
    [item] = (await response.get_json())["items"]
    assert sum(p["unconsumed_events"] for p in item["partitions"]) == 6
    assert all(p["consumer_lag_seconds"] >= 0 for p in item["partitions"])


@pytest.mark.parametrize(("query", "status", "detail"), [
    ("batch_limit=0", 422, "batch_limit can't be lower than 1"),
    ("commit_timeout=61", 422, "commit_timeout can not be more than 60"),
    ("commit_timeout=-1", 422, "commit_timeout can not be less than 0"),
    ("max_uncommitted_events=0", 422, "max_uncommitted_events can't be lower than 1"),
    ("batch_limit=x", 400, "batch_limit must be an integer"),
])
async def test_stream_parameters_are_checked_before_the_stream(client, subscription, query, status, detail):
    response = await client.get(f"/subscriptions/{subscription}/events?{query}")
    assert (await problem(response, status)).startswith(detail)


async def test_stream_of_an_unknown_subscription_is_404(client):
    await problem(await client.get("/subscriptions/00000000-0000-0000-0000-000000000000/events"), 404)


async def test_direct_partitions_must_belong_to_the_subscription(client, subscription):
    body = {"partitions": [{"event_type": ET, "partition": "5"}]}
    response = await client.post(f"/subscriptions/{subscription}/events", json=body)
    assert "don't belong to subscription" in await problem(response, 422)
    body = {"partitions": [{"event_type": ET, "partition": "0"}, {"event_type": ET, "partition": "0"}]}
    response = await client.post(f"/subscriptions/{subscription}/events", json=body)
    assert await problem(response, 422) == "Duplicated partition specified"


async def test_a_second_reset_while_one_waits_for_streams_is_409(broker, subscription, clock):
    stream_id, lines = await broker.open_subscription_stream(subscription, {})
    reset = {"items": [{"event_type": ET, "partition": "0", "offset": "BEGIN"}]}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(broker.reset_cursors, subscription, reset)
        await trio.sleep(1)  # the first reset waits for the stream, whose client never reads
        with pytest.raises(ConflictError, match="Cursors reset is already in progress"):
            await broker.reset_cursors(subscription, reset)
        with pytest.raises(ConflictError, match="Resetting subscription cursors request is still in progress"):
            await broker.open_subscription_stream(subscription, {})
    assert (await broker.subscription_cursors(subscription))[0]["offset"] == "001-0001--1"
    await lines.aclose()
