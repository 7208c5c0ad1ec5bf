"""`GET /metrics` through the in-process app: each metric moves where its
fact happens, and the stream open/close lines say why a stream ended."""

import json
import logging

import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.auth import authenticator
from api.auth_config import AuthConfig, TokenConfig

from .helpers import business_event, business_type

ET = "order.created"
WAIT_S = 10
BEGIN = {"X-Nakadi-Cursors": json.dumps([{"partition": "0", "offset": "BEGIN"}])}


@pytest.fixture
def clock():
    # Jumps after 10 ms of real time with every task blocked, so worker threads mostly finish first.
    return trio.testing.MockClock(autojump_threshold=0.01)


async def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `/metrics`, by name and sorted labels."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = (await response.get_data()).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def publish(client, events, name=ET):
    response = await client.post(f"/event-types/{name}/events", json=events)
    assert response.status_code == 200, await response.get_data()


async def test_metrics_publish_moves_events_bytes_latency_fsync_and_responses(client):
    assert (await client.post("/event-types", json=business_type())).status_code == 201
    before = await scrape(client)
    await publish(client, [business_event("o1"), business_event("o2")])
    after = await scrape(client)
    assert value(after, "nakadi_published_events_total", event_type=ET) == 2
    stored = await stored_bytes(client, 2)
    assert value(after, "nakadi_published_bytes_total", event_type=ET) == stored > 0
    assert value(after, "nakadi_publish_duration_seconds_count", event_type=ET) == 1
    assert value(after, "nakadi_fsync_duration_seconds_count") > value(before, "nakadi_fsync_duration_seconds_count")
    assert value(after, "nakadi_http_responses_total", method="POST", status="200") == 1
    assert value(after, "nakadi_http_responses_total", method="GET", status="200") >= 1
    assert value(after, "nakadi_storage_bytes", event_type=ET) >= stored


async def stored_bytes(client, count):
    """The bytes of the first `count` events as stored, which a batch line carries verbatim."""
    with trio.fail_after(WAIT_S):
        response = await client.get(f"/event-types/{ET}/events?stream_limit={count}&batch_limit={count}",
                                    headers=BEGIN)
    line = (await response.get_data()).split(b"\n")[0]
    events = line[line.index(b'"events":[') + len(b'"events":['):line.rindex(b"]}")]
    return len(events) - (count - 1)  # the commas between them


async def test_metrics_a_refused_publish_counts_no_events_but_its_latency_and_status(client):
    assert (await client.post("/event-types", json=business_type())).status_code == 201
    response = await client.post(f"/event-types/{ET}/events", json=[{"no_order_id": 1}])
    assert response.status_code == 422
    samples = await scrape(client)
    assert value(samples, "nakadi_published_events_total", event_type=ET) == 0
    assert value(samples, "nakadi_publish_duration_seconds_count", event_type=ET) == 1
    assert value(samples, "nakadi_http_responses_total", method="POST", status="422") == 1


async def test_metrics_storage_bytes_per_event_type(client):
    for name in ("a.one", "b.two"):
        assert (await client.post("/event-types", json=business_type(name))).status_code == 201
    await publish(client, [business_event(f"o{i}") for i in range(20)], "b.two")
    samples = await scrape(client)
    assert value(samples, "nakadi_storage_bytes", event_type="b.two") > value(
        samples, "nakadi_storage_bytes", event_type="a.one")


async def test_metrics_committed_lag_per_subscription_partition(client):
    assert (await client.post("/event-types", json=business_type(partitions=2))).status_code == 201
    response = await client.post("/subscriptions", json={"owning_application": "shop", "event_types": [ET],
                                                         "read_from": "begin"})
    subscription = (await response.get_json())["id"]
    assert all(name != "nakadi_subscription_committed_lag_events" for name, _ in await scrape(client))
    assert (await client.patch(f"/subscriptions/{subscription}/cursors", json={"items": []})).status_code == 204
    await publish(client, [business_event(f"o{i}") for i in range(6)])
    samples = await scrape(client)
    lags = {labels: lag for (name, labels), lag in samples.items() if name == "nakadi_subscription_committed_lag_events"}
    assert sorted(dict(labels)["partition"] for labels in lags) == ["0", "1"]
    assert all(dict(labels)["subscription_id"] == subscription for labels in lags)
    assert sum(lags.values()) == 6


async def test_metrics_open_streams_rise_while_a_stream_is_open_and_fall_after_the_client_leaves(
        client, caplog):
    assert (await client.post("/event-types", json=business_type())).status_code == 201
    await publish(client, [business_event(f"o{i}") for i in range(3)])
    caplog.set_level(logging.INFO, logger="nakadi.streams")
    with trio.fail_after(WAIT_S), trio.CancelScope() as connected:
        async with client.request(f"/event-types/{ET}/events?batch_limit=3", headers=BEGIN) as connection:
            await connection.send_complete()
            first = await connection.receive()
            assert first.count(b"order_id") == 3
            samples = await scrape(client)
            assert value(samples, "nakadi_open_streams", kind="event-type") == 1
            assert value(samples, "nakadi_streamed_events_total", kind="event-type", event_type=ET) == 3
            await connection.disconnect()
            while len([r for r in caplog.records if r.name == "nakadi.streams"]) < 2:
                await trio.sleep(0.01)
            # The test connection would wait for a close of its channel that never comes.
            connected.cancel()
    samples = await scrape(client)
    assert value(samples, "nakadi_open_streams", kind="event-type") == 0
    assert value(samples, "nakadi_streams_ended_total", kind="event-type", reason="client gone") == 1
    opened, closed = stream_lines(caplog)
    assert opened["stream_kind"] == closed["stream_kind"] == "event-type"
    assert (closed["reason"], closed["events"], closed["stream_of"]) == ("client gone", 3, ET)


def stream_lines(caplog):
    records = [r for r in caplog.records if r.name == "nakadi.streams"]
    assert [r.getMessage().split()[-1] for r in records][:1] == ["opened"]
    return records[0].__dict__, records[-1].__dict__


@pytest.mark.parametrize(("query", "reason"), [
    ("stream_limit=2&batch_limit=1", "stream limit"),
    ("stream_timeout=1&batch_flush_timeout=1", "stream timeout"),
    ("stream_keep_alive_limit=1&batch_flush_timeout=1&batch_limit=5", "keep-alive limit"),
])
async def test_metrics_stream_close_line_says_which_rule_ended_a_low_level_stream(client, caplog, query, reason):
    assert (await client.post("/event-types", json=business_type())).status_code == 201
    await publish(client, [business_event(f"o{i}") for i in range(3)])
    caplog.set_level(logging.INFO, logger="nakadi.streams")
    with trio.fail_after(WAIT_S):
        response = await client.get(f"/event-types/{ET}/events?{query}", headers={**BEGIN, "X-Flow-Id": "flow-s"})
    assert response.status_code == 200
    opened, closed = stream_lines(caplog)
    assert opened["flow_id"] == closed["flow_id"] == "flow-s"
    assert closed["reason"] == reason
    samples = await scrape(client)
    assert value(samples, "nakadi_streams_ended_total", kind="event-type", reason=reason) == 1
    assert value(samples, "nakadi_open_streams", kind="event-type") == 0


async def test_metrics_subscription_stream_counts_events_and_says_why_it_ended(client, caplog):
    assert (await client.post("/event-types", json=business_type())).status_code == 201
    await publish(client, [business_event(f"o{i}") for i in range(4)])
    response = await client.post("/subscriptions", json={"owning_application": "shop", "event_types": [ET],
                                                         "read_from": "begin"})
    subscription = (await response.get_json())["id"]
    caplog.set_level(logging.INFO, logger="nakadi.streams")
    with trio.fail_after(WAIT_S):
        response = await client.get(f"/subscriptions/{subscription}/events?stream_timeout=1&batch_flush_timeout=1")
    assert response.status_code == 200
    opened, closed = stream_lines(caplog)
    assert (opened["stream_kind"], opened["stream_of"]) == ("subscription", subscription)
    assert closed["stream_id"] == response.headers["X-Nakadi-StreamId"]
    assert (closed["reason"], closed["events"]) == ("stream timeout", 4)
    samples = await scrape(client)
    assert value(samples, "nakadi_streamed_events_total", kind="subscription", event_type=ET) == 4
    assert value(samples, "nakadi_open_streams", kind="subscription") == 0


async def test_metrics_stream_ends_as_shutdown_when_the_server_ends_streams(client, broker, caplog):
    assert (await client.post("/event-types", json=business_type())).status_code == 201
    caplog.set_level(logging.INFO, logger="nakadi.streams")
    with trio.fail_after(WAIT_S):
        async with trio.open_nursery() as nursery:
            responses = []

            async def read() -> None:
                responses.append(await client.get(f"/event-types/{ET}/events?batch_flush_timeout=30",
                                                  headers=BEGIN))
            nursery.start_soon(read)
            while not [r for r in caplog.records if r.name == "nakadi.streams"]:
                await trio.sleep(0.01)
            broker.end_streams()
    assert responses[0].status_code == 200
    assert stream_lines(caplog)[1]["reason"] == "shutdown"


async def test_metrics_needs_a_token_when_authentication_is_on(broker):
    config = AuthConfig("tokens", tokens=(TokenConfig("metrics-token-0123456789abcdef", "user", "ops"),))
    client = create_app(broker, authenticator=authenticator(config)).test_client()
    assert (await client.get("/metrics")).status_code == 401
    response = await client.get("/metrics", headers={"Authorization": "Bearer metrics-token-0123456789abcdef"})
    assert response.status_code == 200
    assert b"nakadi_http_responses_total" in await response.get_data()
