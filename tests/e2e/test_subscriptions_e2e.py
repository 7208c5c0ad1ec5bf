"""Subscriptions over real HTTP: consumers sharing a 2-partition event type,
a consumer that goes away without committing, and committed cursors
surviving kill -9 of the server."""

import json
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.api.helpers import business_event, business_type
from tests.server import serving, start_server

pytestmark = pytest.mark.slow

EVENTS = 20


def client_for(server):
    return httpx.Client(base_url=server.url, trust_env=False, timeout=30)


def setup_subscription(client):
    assert client.post("/event-types", json=business_type(partitions=2)).status_code == 201
    events = [business_event(f"o{i}") for i in range(EVENTS)]
    assert client.post("/event-types/order.created/events", json=events).status_code == 200
    response = client.post("/subscriptions", json={"owning_application": "shop", "event_types": ["order.created"],
                                                   "read_from": "begin"})
    assert response.status_code == 201
    return response.json()["id"]


class Consumer(threading.Thread):
    """Reads one stream; commits every batch unless told not to; stops at `stop`."""

    def __init__(self, url, subscription_id, query, *, commit=True):
        super().__init__(daemon=True)
        self.url, self.subscription_id, self.query, self.commit = url, subscription_id, query, commit
        self.status = None
        self.stream_id = None
        self.events = []
        self.opened = threading.Event()
        self.stop = threading.Event()
        self.debug = []
        self.error = None

    def run(self):
        try:
            self._consume()
        except httpx.TransportError as e:
            self.error = e  # the server went away (killed by the test)

    def _consume(self):
        with httpx.Client(base_url=self.url, trust_env=False, timeout=httpx.Timeout(30, read=60)) as client:
            with client.stream("GET", f"/subscriptions/{self.subscription_id}/events?{self.query}") as response:
                self.status = response.status_code
                self.stream_id = response.headers.get("X-Nakadi-StreamId")
                self.opened.set()
                if response.status_code != 200:
                    return
                for line in response.iter_lines():
                    batch = json.loads(line)
                    if "info" in batch:
                        self.debug.append(batch["info"]["debug"])
                    if batch.get("events"):
                        self.events += [e["order_id"] for e in batch["events"]]
                        if self.commit:
                            committed = client.post(f"/subscriptions/{self.subscription_id}/cursors",
                                                    json={"items": [batch["cursor"]]},
                                                    headers={"X-Nakadi-StreamId": self.stream_id})
                            assert committed.status_code == 204, committed.text
                    if self.stop.is_set():
                        return


def wait_for(condition, seconds=20):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_subscription_two_consumers_share_partitions_and_a_third_gets_409(tmp_path):
    with serving(tmp_path, tmp_path / "data") as server, client_for(server) as client:
        subscription_id = setup_subscription(client)
        query = "batch_limit=1&max_uncommitted_events=1&batch_flush_timeout=1"
        first = Consumer(server.url, subscription_id, query)
        first.start()
        first.opened.wait(10)
        second = Consumer(server.url, subscription_id, query)
        second.start()
        second.opened.wait(10)
        assert (first.status, second.status) == (200, 200)
        third = client.get(f"/subscriptions/{subscription_id}/events")
        assert third.status_code == 409
        assert third.json()["detail"].startswith("No free slots for streaming available")
        wait_for(lambda: len(first.events) + len(second.events) == EVENTS)
        assert sorted(first.events + second.events) == sorted(f"o{i}" for i in range(EVENTS))

        def partitions():
            return client.get(f"/subscriptions/{subscription_id}/stats").json()["items"][0]["partitions"]
        # The first may have read everything before the second joined; the
        # partitions are shared all the same, once handed over.
        wait_for(lambda: {p["stream_id"] for p in partitions()} == {first.stream_id, second.stream_id})
        # A consumer counts a batch before it commits it: the last commits may still be on their way.
        wait_for(lambda: [p["unconsumed_events"] for p in partitions()] == [0, 0])
        first.stop.set()
        second.stop.set()


KILLED_CONSUMER = """
import json, sys, httpx
url, path = sys.argv[1], sys.argv[2]
with httpx.Client(base_url=url, trust_env=False, timeout=60) as client:
    with client.stream("GET", path) as response:
        for line in response.iter_lines():
            for event in json.loads(line).get("events", []):
                print(event["order_id"], flush=True)
"""


def test_subscription_consumer_killed_mid_stream_leaves_its_events_to_the_next(tmp_path):
    with serving(tmp_path, tmp_path / "data") as server, client_for(server) as client:
        subscription_id = setup_subscription(client)
        query = "batch_limit=5&max_uncommitted_events=100&commit_timeout=1&batch_flush_timeout=1"
        path = f"/subscriptions/{subscription_id}/events?{query}"
        victim = subprocess.Popen([sys.executable, "-c", KILLED_CONSUMER, server.url, path],
                                  stdout=subprocess.PIPE, text=True)
        try:
            received = [victim.stdout.readline().strip() for _ in range(EVENTS)]
        finally:
            victim.kill()
            victim.wait(10)
            victim.stdout.close()
        taker = Consumer(server.url, subscription_id, query)
        taker.start()
        wait_for(lambda: len(taker.events) == EVENTS)
        assert sorted(taker.events) == sorted(received), "what the killed consumer never committed came again"
        taker.stop.set()


def test_subscription_commits_survive_kill_9(tmp_path):
    data = tmp_path / "data"
    server = start_server(tmp_path, data)
    try:
        with client_for(server) as client:
            subscription_id = setup_subscription(client)
        consumer = Consumer(server.url, subscription_id, "batch_limit=3&max_uncommitted_events=50&batch_flush_timeout=1")
        consumer.start()
        with client_for(server) as client:
            def committed():
                items = client.get(f"/subscriptions/{subscription_id}/cursors").json()["items"]
                return items if sum(int(c["offset"].rsplit("-", 1)[1]) + 1 for c in items) == EVENTS else None
            wait_for(committed)
            before = committed()
        server.kill()
    finally:
        if server.process.poll() is None:
            server.kill()
    with serving(tmp_path, data) as server, client_for(server) as client:
        after = client.get(f"/subscriptions/{subscription_id}/cursors").json()["items"]
        assert [(c["partition"], c["offset"]) for c in after] == [(c["partition"], c["offset"]) for c in before]
        with client.stream("GET", f"/subscriptions/{subscription_id}/events?stream_timeout=2&batch_flush_timeout=1"
                           ) as response:
            lines = [json.loads(line) for line in response.iter_lines()]
        assert not any(line.get("events") for line in lines), "nothing committed is sent again"


def test_subscription_commit_results_and_reset_closing_the_stream(tmp_path):
    with serving(tmp_path, tmp_path / "data") as server, client_for(server) as client:
        subscription_id = setup_subscription(client)
        body = {"partitions": [{"event_type": "order.created", "partition": "0"}], "batch_limit": 100,
                "batch_flush_timeout": 1, "max_uncommitted_events": 100}
        with client.stream("POST", f"/subscriptions/{subscription_id}/events", json=body) as response:
            assert response.status_code == 200
            stream_id = response.headers["X-Nakadi-StreamId"]
            lines = response.iter_lines()
            batch = json.loads(next(lines))
            assert batch["cursor"]["partition"] == "0" and batch["events"]
            assert batch["info"] == {"debug": "Stream started"}
            commit_url = f"/subscriptions/{subscription_id}/cursors"
            headers = {"X-Nakadi-StreamId": stream_id}
            assert client.post(commit_url, json={"items": [batch["cursor"]]}, headers=headers).status_code == 204
            again = client.post(commit_url, json={"items": [batch["cursor"]]}, headers=headers)
            assert again.status_code == 200
            assert again.json() == {"items": [{"cursor": batch["cursor"], "result": "outdated"}]}
            foreign = {**batch["cursor"], "partition": "1"}
            refused = client.post(commit_url, json={"items": [foreign]}, headers=headers)
            assert refused.status_code == 422 and "cannot be committed with stream id" in refused.json()["detail"]
            stats = client.get(f"/subscriptions/{subscription_id}/stats").json()["items"][0]["partitions"]
            assert stats[0]["assignment_type"] == "direct" and stats[0]["stream_id"] == stream_id
            assert stats[1]["state"] == "unassigned"
            reset = {"items": [{"event_type": "order.created", "partition": "0", "offset": "BEGIN"}]}
            assert client.patch(commit_url, json=reset).status_code == 204
            rest = [json.loads(line) for line in lines]
        assert rest[-1]["info"] == {"debug": "Resetting subscription cursors"}
        offsets = {c["partition"]: c["offset"] for c in client.get(commit_url).json()["items"]}
        assert offsets["0"] == "001-0001--1"
