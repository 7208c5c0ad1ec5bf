"""The broker facade: start-up over an existing data directory, retention in
the background, and deletion."""

import json
import time

import pytest
import trio

from broker.broker import Broker, BrokerConfig
from broker.errors import InvalidRequestError, NotFoundError, UnavailableError

EVENT_TYPE = {"name": "t.undefined", "owning_application": "a", "category": "undefined",
              "schema": {"type": "json_schema", "schema": "{}"}}


@pytest.fixture
def config(tmp_path):
    return BrokerConfig(str(tmp_path / "data"), retention_interval_s=60)


async def test_broker_reopens_event_types_and_events(config):
    broker = Broker.open(config)
    await broker.create_event_type(EVENT_TYPE)
    assert (await broker.publish("t.undefined", b'[{"a":1},{"a":2}]', flow_id="f")).status == 200
    broker.close()
    again = Broker.open(config)
    assert again.get_event_type("t.undefined")["name"] == "t.undefined"
    assert again.partition("t.undefined", "0", None)["newest_available_offset"] == "001-0001-000000000000000001"
    again.close()


async def test_broker_retention_deletes_expired_segments_in_the_background(config):
    broker = Broker.open(config)
    await broker.create_event_type(EVENT_TYPE)
    log = broker._logs._logs["t.undefined"][0]
    four_hours_ago = time.time_ns() // 1_000_000 - 4 * 3600 * 1000
    log.append([b'{"old":1}'], received_ms=four_hours_ago)
    log.roll()
    retention_ms = 3 * 3600 * 1000
    await broker.update_event_type("t.undefined", dict(EVENT_TYPE, options={"retention_time": retention_ms}))
    async with trio.open_nursery() as nursery:
        await nursery.start(broker.run_retention)
        with trio.fail_after(10):
            while broker.partition("t.undefined", "0", None)["oldest_available_offset"] != \
                    "001-0001-000000000000000001":
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    broker.close()


async def test_broker_delete_removes_the_type_and_a_stream_of_it_ends(config):
    broker = Broker.open(config)
    await broker.create_event_type(EVENT_TYPE)
    await broker.delete_event_type("t.undefined")
    with pytest.raises(NotFoundError):
        broker.get_event_type("t.undefined")
    await broker.create_event_type(EVENT_TYPE)
    assert broker.partitions("t.undefined", None)[0]["newest_available_offset"] == "001-0001--1"
    broker.close()


async def test_broker_refuses_to_open_over_damaged_logs_naming_the_file(config, tmp_path):
    broker = Broker.open(config)
    await broker.create_event_type(EVENT_TYPE)
    await broker.publish("t.undefined", json.dumps([{"n": i} for i in range(3)]).encode(), flow_id="f")
    await broker.publish("t.undefined", b'[{"n":9}]', flow_id="f")
    broker.close()
    segment = tmp_path / "data" / "event-types" / "t.undefined" / "0" / "00000000000000000000.log"
    data = bytearray(segment.read_bytes())
    data[40] ^= 0xFF
    segment.write_bytes(bytes(data))
    with pytest.raises(UnavailableError, match="00000000000000000000.log at byte"):
        Broker.open(config)


async def test_broker_partition_logs_refuse_a_name_that_could_leave_the_data_directory(config, tmp_path):
    broker = Broker.open(config)
    for name in ("../x", "a/b", "a..b", ".hidden", "x\\y"):
        with pytest.raises(ValueError, match="unsafe event type name"):
            await broker._logs.create(name, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    broker.close()


async def test_broker_retention_survives_an_event_type_deleted_under_it(config, caplog):
    broker = Broker.open(config)
    await broker.create_event_type(EVENT_TYPE)
    await broker.create_event_type(dict(EVENT_TYPE, name="t.other"))
    broker._logs._logs["t.undefined"][0].close()
    async with trio.open_nursery() as nursery:
        await nursery.start(broker.run_retention)
        with trio.fail_after(10):
            while "retention of t.undefined skipped" not in caplog.text:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    broker.close()


async def test_broker_publish_racing_a_delete_fails_its_items_instead_of_crashing(config):
    broker = Broker.open(config)
    await broker.create_event_type(EVENT_TYPE)
    broker._logs._logs.pop("t.undefined")  # the delete got there between lookup and append
    outcome = await broker.publish("t.undefined", b'[{"a":1}]', flow_id="f")
    assert outcome.status == 207
    assert outcome.items[0]["publishing_status"] == "failed" and "does not exist" in outcome.items[0]["detail"]
    broker.close()


@pytest.mark.parametrize("offset, detail", [(-1, "can't be lower than 0"), (10**20, "can't be greater than 2147483647")])
async def test_broker_schema_pages_outside_an_int_are_400(config, offset, detail):
    broker = Broker.open(config)
    await broker.create_event_type(EVENT_TYPE)
    with pytest.raises(InvalidRequestError, match=detail):
        broker.schemas("t.undefined", 20, offset)
    broker.close()
