"""The embedded broker and the pytest plugin's `nakadi_server` fixture."""

from importlib.metadata import entry_points

import httpx
import pytest

from api.data_dir_lock import DataDirError
from api.embedded import EmbeddedBroker
from api.pytest_plugin import business_event

ORDER = {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}


def test_the_plugin_is_registered_for_pytest():
    assert [e.value for e in entry_points(group="pytest11") if e.name == "nakadi"] == ["api.pytest_plugin"]


def test_nakadi_server_fixture_is_a_real_broker(nakadi_server):
    nakadi_server.create_event_type("test.orders", schema=ORDER, partitions=2)
    nakadi_server.publish("test.orders", [business_event(order_id=f"o-{i}") for i in range(5)])
    assert sorted(e["order_id"] for e in nakadi_server.read("test.orders")) == [f"o-{i}" for i in range(5)]
    assert httpx.get(nakadi_server.url + "/health").text == "OK"


def test_nakadi_server_helpers_fail_with_the_answer(nakadi_server):
    nakadi_server.create_event_type("test.orders", schema=ORDER)
    with pytest.raises(AssertionError, match="422"):
        nakadi_server.publish("test.orders", [business_event(order_id=1)])


def test_embedded_broker_keeps_its_data_across_a_restart_and_stops_serving(tmp_path):
    with EmbeddedBroker(tmp_path) as broker:
        url = broker.url
        assert url.startswith("http://127.0.0.1:")
        body = {"name": "test.kept", "owning_application": "tests", "category": "undefined",
                "partition_strategy": "random", "schema": {"type": "json_schema", "schema": "{}"}}
        assert httpx.post(url + "/event-types", json=body).status_code == 201
        assert httpx.post(url + "/event-types/test.kept/events", json=[{"n": 1}]).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=5)
    with EmbeddedBroker(tmp_path) as again:
        partitions = httpx.get(again.url + "/event-types/test.kept/partitions").json()
        assert [p["newest_available_offset"] for p in partitions] == ["001-0001-000000000000000000"]


def test_embedded_broker_reports_a_start_failure(tmp_path):
    (tmp_path / "metadata.db").write_bytes(b"not an SQLite database" * 100)
    with pytest.raises(RuntimeError, match="did not start"):
        EmbeddedBroker(tmp_path).start()
    (tmp_path / "metadata.db").unlink()
    with EmbeddedBroker(tmp_path) as again:  # the failed start let go of the directory
        assert httpx.get(again.url + "/health").text == "OK"


def test_embedded_broker_refuses_a_data_directory_that_is_not_one(tmp_path):
    (tmp_path / "a-file").write_text("not a data directory")
    with pytest.raises(DataDirError, match="cannot use data directory"):
        EmbeddedBroker(tmp_path / "a-file").start()


def test_embedded_broker_refuses_a_data_directory_another_broker_holds(tmp_path):
    with EmbeddedBroker(tmp_path):
        with pytest.raises(DataDirError, match="in use by another nakadi"):
            EmbeddedBroker(tmp_path).start()
    with EmbeddedBroker(tmp_path) as again:  # released once stopped
        assert httpx.get(again.url + "/health").text == "OK"
