"""kill -9 of a real server while publishers wait for their 200s: after a
restart, every acknowledged event is read back once, in each writer's
order, with dense offsets (RELIABILITY.md I1-I4, through HTTP)."""

import json
import os
import random
import threading
import time
import uuid

import httpx
import pytest

from tests.server import start_server

pytestmark = pytest.mark.slow

CYCLES = 5
WRITERS = 4
PARTITIONS = 3
EVENT_TYPE = {"name": "crash.test", "owning_application": "test", "category": "business",
              "enrichment_strategies": ["metadata_enrichment"], "partition_strategy": "random",
              "default_statistic": {"messages_per_minute": 1, "message_size": 1,
                                    "read_parallelism": PARTITIONS, "write_parallelism": PARTITIONS},
              "schema": {"type": "json_schema", "schema": json.dumps({"type": "object"})}}


def publish_until_killed(url, writer, acked, stop):
    seq = 0
    with httpx.Client(base_url=url, trust_env=False, timeout=5) as client:
        for _ in range(100_000):
            if stop.is_set():
                return
            batch = [{"w": writer, "n": seq + i, "metadata": {"eid": str(uuid.uuid4()),
                                                              "occurred_at": "2024-01-01T00:00:00Z"}}
                     for i in range(random.randint(1, 10))]
            try:
                response = client.post("/event-types/crash.test/events", json=batch)
            except httpx.HTTPError:
                return
            if response.status_code == 200:
                acked.extend(event["metadata"]["eid"] for event in batch)
            seq += len(batch)


def read_everything(url):
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
        views = client.get("/event-types/crash.test/partitions").json()
        total = sum(int(v["newest_available_offset"].rsplit("-", 1)[1]) + 1 for v in views)
        if total == 0:
            return []
        headers = {"X-Nakadi-Cursors": json.dumps([{"partition": v["partition"], "offset": "BEGIN"} for v in views])}
        with client.stream("GET", f"/event-types/crash.test/events?batch_limit=1000&stream_limit={total}"
                           "&batch_flush_timeout=1", headers=headers) as response:
            assert response.status_code == 200
            return [json.loads(line) for line in response.iter_lines()]


def test_publish_crash_kill_9_loses_no_acknowledged_event(tmp_path):
    seed = int(os.environ.get("NAKADI_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"publish crash seed={seed}")
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    acked: list[str] = []
    for cycle in range(CYCLES):
        server = start_server(tmp_path, data_dir)
        if cycle == 0:
            assert httpx.post(server.url + "/event-types", json=EVENT_TYPE, trust_env=False).status_code == 201
        stop = threading.Event()
        writers = [threading.Thread(target=publish_until_killed, args=(server.url, w + cycle * WRITERS, acked, stop))
                   for w in range(WRITERS)]
        for thread in writers:
            thread.start()
        time.sleep(rng.uniform(0.3, 1.0))
        server.kill()
        stop.set()
        for thread in writers:
            thread.join(timeout=10)
    server = start_server(tmp_path, data_dir)
    try:
        batches = read_everything(server.url)
    finally:
        server.stop()
    events_by_partition: dict[str, list[dict]] = {}
    for batch in batches:
        events_by_partition.setdefault(batch["cursor"]["partition"], []).extend(batch.get("events", []))
    eids = [e["metadata"]["eid"] for events in events_by_partition.values() for e in events]
    lost = set(acked) - set(eids)
    duplicates = len(eids) - len(set(eids))
    order_violations = 0
    for events in events_by_partition.values():
        last: dict[int, int] = {}
        for event in events:
            order_violations += event["n"] <= last.get(event["w"], -1)
            last[event["w"]] = event["n"]
    report = (f"publish-crash: seed={seed} cycles={CYCLES} acked={len(acked)} read={len(eids)} lost={len(lost)} "
              f"duplicates={duplicates} order_violations={order_violations}")
    print(report)
    assert len(acked) > 0, report
    assert (len(lost), duplicates, order_violations) == (0, 0, 0), report
