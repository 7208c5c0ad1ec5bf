"""The low-level stream over real HTTP: layout, cursors, end-of-stream
rules, headers before the first batch, and its errors."""

import json
import signal

import httpx
import pytest

from tests.api.helpers import business_event, business_type
from tests.server import serving

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path):
    with serving(tmp_path, tmp_path / "data") as server:
        yield server


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
        yield client


def cursors(*pairs):
    return {"X-Nakadi-Cursors": json.dumps([{"partition": p, "offset": o} for p, o in pairs])}


def test_stream_from_begin_delivers_batches_in_nakadi_layout_and_ends_at_stream_limit(client):
    assert client.post("/event-types", json=business_type()).status_code == 201
    events = [business_event(f"o{i}") for i in range(5)]
    assert client.post("/event-types/order.created/events", json=events).status_code == 200
    with client.stream("GET", "/event-types/order.created/events?batch_limit=2&stream_limit=5",
                       headers=cursors(("0", "BEGIN"))) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/x-json-stream"
        assert response.headers["Warning"].startswith("299 - nakadi - the Low-level API is deprecated")
        lines = list(response.iter_lines())
    batches = [json.loads(line) for line in lines]
    assert [b["cursor"]["offset"] for b in batches] == [
        "001-0001-000000000000000001", "001-0001-000000000000000003", "001-0001-000000000000000004"]
    assert [e["order_id"] for b in batches for e in b["events"]] == [f"o{i}" for i in range(5)]
    assert lines[0].startswith('{"cursor":{"partition":"0","offset":"001-0001-000000000000000001"},"events":[{')


def test_stream_sends_headers_before_the_first_batch_and_keep_alives(client):
    client.post("/event-types", json=business_type())
    with client.stream("GET", "/event-types/order.created/events?batch_flush_timeout=1&stream_keep_alive_limit=2"
                       ) as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())
    assert lines == ['{"cursor":{"partition":"0","offset":"001-0001--1"}}'] * 2


def test_stream_headers_arrive_long_before_any_batch(client):
    client.post("/event-types", json=business_type())
    timeout = httpx.Timeout(10, read=5)
    with client.stream("GET", "/event-types/order.created/events?batch_flush_timeout=30&stream_timeout=60",
                       timeout=timeout) as response:
        assert response.status_code == 200


def test_stream_delivers_events_published_while_it_waits(client, server):
    client.post("/event-types", json=business_type())
    with client.stream("GET", "/event-types/order.created/events?stream_limit=1&batch_flush_timeout=30") as response:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as publisher:
            assert publisher.post("/event-types/order.created/events",
                                  json=[business_event("live")]).status_code == 200
        [line] = list(response.iter_lines())
    assert json.loads(line)["events"][0]["order_id"] == "live"


@pytest.mark.parametrize(("query", "headers", "status"), [
    ("", {"X-Nakadi-Cursors": "not json"}, 400),
    ("", {"X-Nakadi-Cursors": "[]"}, 412),
    ("", {"X-Nakadi-Cursors": '[{"partition":"9","offset":"BEGIN"}]'}, 412),
    ("", {"X-Nakadi-Cursors": '[{"partition":"0","offset":"001-0001-000000000000000005"}]'}, 412),
    ("?batch_limit=0", {}, 422),
    ("?batch_limit=5&stream_limit=2", {}, 422),
    ("?batch_limit=x", {}, 400),
])
def test_stream_refuses_bad_cursors_and_limits_with_problems(client, query, headers, status):
    client.post("/event-types", json=business_type())
    response = client.get("/event-types/order.created/events" + query, headers=headers)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == status


def test_stream_of_unknown_event_type_is_404(client):
    response = client.get("/event-types/nope/events")
    assert response.status_code == 404


def test_stream_ends_cleanly_when_the_server_shuts_down(client, server):
    client.post("/event-types", json=business_type())
    with client.stream("GET", "/event-types/order.created/events?batch_flush_timeout=1") as response:
        lines = response.iter_lines()
        assert next(lines) == '{"cursor":{"partition":"0","offset":"001-0001--1"}}'
        server.process.send_signal(signal.SIGTERM)
        rest = list(lines)
    assert all(line == '{"cursor":{"partition":"0","offset":"001-0001--1"}}' for line in rest)
    returncode, _, stderr = server.wait()
    assert returncode == 0, stderr
