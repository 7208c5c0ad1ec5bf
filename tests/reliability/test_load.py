"""Load (RELIABILITY.md (5), the CI profile): one server, and the load from
a second process so that each gets a core.

The load process is this module run as a script (`python -m
tests.reliability.test_load CONFIG`): trio and httpx. For `LOAD_SECONDS`
(capped at `EVENTS_MAX` events) 8 publishers POST batches of 10 events of
about 300 bytes to 2 event types of 4 partitions, each publisher to one
event type and waiting for each answer; meanwhile 4 low-level streams read
from BEGIN (two per event type, all its partitions each) and 2 consumers
share one subscription of both event types, committing their newest
cursors every 200 ms from a task of their own. When the publishers stop,
the load process takes the newest offsets as targets; the readers drain
until they reach them or `DRAIN_SECONDS` pass. It writes one JSON file:
every publish (event type, outcome ok / fail / info, status, latency, the
eids with writer and sequence number), what every reader received (per
partition, offsets and eids in order), statuses of every request, the
publish-to-read latencies, and how many committed events a consumer was
sent again.

The test reads every partition back from BEGIN as the oracle and checks:
I1-I4 against the publish history (`harness.check`); acked = read per
partition; each low-level stream got every event of its event type exactly
once, in order, with the oracle's offsets; the consumers together got
every event at least once, each with the oracle's eid at its offset, and
no committed event again; the subscription's lag back to 0; no 5xx; the
server's open fds back within +-2 once the streams closed; RSS growth
below `RSS_GROWTH_MIB_MAX`. Correctness fails the test; throughput and
latencies are printed as a trend (2-core runners are noisy).
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.reliability.harness import (
    History,
    Report,
    check,
    event,
    event_type,
    open_fds,
    percentiles,
    read_all,
    sized,
    start,
)

pytestmark = pytest.mark.slow

LOAD_SECONDS = sized(20, 600)
DRAIN_SECONDS = 15
EVENTS_MAX = sized(200_000, 2_000_000)
PUBLISHERS = 8
BATCH_EVENTS = 10
PADDING_BYTES = 170  # with the rest of harness.event, about 300 bytes an event
EVENT_TYPES = ("load.a", "load.b")
PARTITIONS = 4
LOW_LEVEL_STREAMS = 4
CONSUMERS = 2
COMMIT_INTERVAL_S = 0.2
REQUEST_TIMEOUT_S = 30
# The load process: setup, load, drain and writing its results.
LOAD_PROCESS_S_MAX = LOAD_SECONDS + DRAIN_SECONDS + 30
FD_SLACK = 2
FD_SETTLE_S = 10  # the server notices a closed stream at its next write: a few seconds
RSS_GROWTH_MIB_MAX = 100
SAMPLE_INTERVAL_S = 0.25
REPO = Path(__file__).resolve().parents[2]


# -- the load process ----------------------------------------------------------

def _offset(text: str) -> int:
    """A Nakadi offset `001-0001-000000000000000042` as 42; before the first event, -1."""
    return -1 if text.endswith("--1") else int(text.rsplit("-", 1)[1])


@dataclass
class Load:
    """The state the load process's tasks share (one trio thread)."""

    config: dict
    publishes: list[list] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    reserved: int = 0
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    read_latencies_s: list[float] = field(default_factory=list)
    targets: dict[str, dict[str, int]] | None = None  # event type -> partition -> newest offset, once published
    committed: dict[tuple[str, str], int] = field(default_factory=dict)
    subscription_newest: dict[tuple[str, str], int] = field(default_factory=dict)
    redelivered_committed: int = 0
    non_problem_errors: int = 0
    errors: list[str] = field(default_factory=list)

    def count(self, kind: str, status: int | str, response: httpx.Response | None = None) -> None:
        self.statuses[kind][str(status)] += 1
        if response is not None and response.status_code >= 400 and not response.headers.get(
                "content-type", "").startswith("application/problem+json"):
            self.non_problem_errors += 1

    def subscription_drained(self) -> bool:
        return self.targets is not None and all(
            self.subscription_newest.get((name, p), -1) >= newest and self.committed.get((name, p), -1) >= newest
            for name, partitions in self.targets.items() for p, newest in partitions.items())


async def _publisher(load: Load, client: httpx.AsyncClient, writer: int, deadline: float) -> None:
    import orjson
    import trio

    config = load.config
    name = config["event_types"][writer % len(config["event_types"])]
    rng = random.Random(config["seed"] * 1000 + writer)
    n = 0
    while trio.current_time() < deadline and load.reserved < config["events_max"]:
        load.reserved += config["batch_events"]
        events = [event(writer, n + i, config["padding_bytes"] + rng.randrange(-20, 21))
                  for i in range(config["batch_events"])]
        n += len(events)
        body = orjson.dumps(events)
        sent = time.monotonic()
        for e in events:
            load.sent_at[e["metadata"]["eid"]] = sent
        response = None
        try:
            response = await client.post(f"/event-types/{name}/events", content=body,
                                         headers={"Content-Type": "application/json"})
            status: int | str = response.status_code
        except httpx.HTTPError as e:
            status = type(e).__name__
        took_ms = (time.monotonic() - sent) * 1000
        load.count("publish", status, response)
        outcome = "ok" if status == 200 else "fail" if isinstance(status, int) and status < 500 else "info"
        if outcome != "ok":
            load.errors.append(f"publish {name} by {writer}: {status}")
        load.publishes.append([name, outcome, status, round(took_ms, 3),
                               [[e["metadata"]["eid"], e["w"], e["n"]] for e in events]])


async def _low_level_reader(load: Load, name: str, record: dict) -> None:
    import orjson

    config = load.config
    cursors = [{"partition": p, "offset": "BEGIN"} for p in record["partitions"]]
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, read=REQUEST_TIMEOUT_S)
    async with httpx.AsyncClient(base_url=config["url"], trust_env=False, timeout=timeout) as client:
        query = f"batch_limit=100&batch_flush_timeout=1&stream_timeout={config['stream_timeout_s']}"
        async with client.stream("GET", f"/event-types/{name}/events?{query}",
                                 headers={"X-Nakadi-Cursors": json.dumps(cursors)}) as response:
            load.count("stream", response.status_code, response)
            if response.status_code != 200:
                load.errors.append(f"stream {name}: {response.status_code} {(await response.aread())[:300]!r}")
                return
            async for line in response.aiter_lines():
                batch = orjson.loads(line)
                events = batch.get("events")
                partition = batch["cursor"]["partition"]
                received = record["partitions"][partition]
                if events:
                    now = time.monotonic()
                    last = _offset(batch["cursor"]["offset"])
                    received["offsets"].extend(range(last - len(events) + 1, last + 1))
                    for e in events:
                        eid = e["metadata"]["eid"]
                        received["eids"].append(eid)
                        if eid in load.sent_at:
                            load.read_latencies_s.append(now - load.sent_at[eid])
                if load.targets is not None and all(
                        (record["partitions"][p]["offsets"] or [-1])[-1] >= newest
                        for p, newest in load.targets[name].items()):
                    record["drained"] = True
                    return


async def _consumer(load: Load, subscription_id: str, record: dict) -> None:
    import orjson
    import trio

    config = load.config
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, read=REQUEST_TIMEOUT_S)
    query = (f"batch_limit=100&max_uncommitted_events=5000&batch_flush_timeout=1&commit_timeout=60"
             f"&stream_timeout={config['stream_timeout_s']}")
    async with httpx.AsyncClient(base_url=config["url"], trust_env=False, timeout=timeout) as client:
        async with client.stream("GET", f"/subscriptions/{subscription_id}/events?{query}") as response:
            load.count("subscription_stream", response.status_code, response)
            if response.status_code != 200:
                load.errors.append(f"subscription stream: {response.status_code} {(await response.aread())[:300]!r}")
                return
            stream_id = response.headers["X-Nakadi-StreamId"]
            record["stream_id"] = stream_id
            pending: dict[tuple[str, str], dict] = {}
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_committer, load, client, subscription_id, stream_id, pending, record)
                async for line in response.aiter_lines():
                    batch = orjson.loads(line)
                    cursor = batch["cursor"]
                    key = (cursor["event_type"], cursor["partition"])
                    events = batch.get("events")
                    if events:
                        last = _offset(cursor["offset"])
                        committed = load.committed.get(key, -1)
                        for i, e in enumerate(events):
                            offset = last - len(events) + 1 + i
                            if offset <= committed:  # committed (204 seen) before this batch was read
                                load.redelivered_committed += 1
                            record["received"].append([key[0], key[1], offset, e["metadata"]["eid"]])
                        pending[key] = cursor
                        load.subscription_newest[key] = max(load.subscription_newest.get(key, -1), last)
                    if not pending and load.subscription_drained():
                        record["drained"] = True
                        break
                nursery.cancel_scope.cancel()
            await _commit(load, client, subscription_id, stream_id, pending, record)


async def _committer(load: Load, client: httpx.AsyncClient, subscription_id: str, stream_id: str,
                     pending: dict, record: dict) -> None:
    import trio

    while True:
        await trio.sleep(COMMIT_INTERVAL_S)
        await _commit(load, client, subscription_id, stream_id, pending, record)


async def _commit(load: Load, client: httpx.AsyncClient, subscription_id: str, stream_id: str,
                  pending: dict, record: dict) -> None:
    """Commit the newest cursor received of every partition not yet committed."""
    import trio

    if not pending:
        return
    items = dict(pending)
    response = None
    with trio.CancelScope(shield=True):
        try:
            response = await client.post(f"/subscriptions/{subscription_id}/cursors",
                                         json={"items": list(items.values())},
                                         headers={"X-Nakadi-StreamId": stream_id})
            status: int | str = response.status_code
        except httpx.HTTPError as e:
            status = type(e).__name__
    load.count("commit", status, response)
    record["commits"] += 1
    if status not in (200, 204):
        load.errors.append(f"commit: {status}")
        return
    # 204: all committed; 200: some `outdated`, so the committed cursor is
    # already at or beyond them. Either way each is committed up to there.
    for key in items:
        offset = _offset(items[key]["offset"])
        load.committed[key] = max(load.committed.get(key, -1), offset)
        if pending.get(key) is items[key]:
            del pending[key]


async def _newest_offsets(config: dict) -> dict[str, dict[str, int]]:
    async with httpx.AsyncClient(base_url=config["url"], trust_env=False, timeout=REQUEST_TIMEOUT_S) as client:
        targets = {}
        for name in config["event_types"]:
            response = await client.get(f"/event-types/{name}/partitions")
            response.raise_for_status()
            targets[name] = {v["partition"]: _offset(v["newest_available_offset"]) for v in response.json()}
        return targets


async def run_load(config: dict) -> dict:
    """The whole load; its results (see the module docstring)."""
    import trio

    load = Load(config)
    low_level = [{"event_type": config["event_types"][i % len(config["event_types"])], "drained": False,
                  "partitions": {str(p): {"offsets": [], "eids": []} for p in range(config["partitions"])}}
                 for i in range(config["low_level_streams"])]
    consumers = [{"drained": False, "stream_id": None, "received": [], "commits": 0}
                 for _ in range(config["consumers"])]
    started = time.monotonic()
    timings: dict[str, float] = {}
    async with trio.open_nursery() as outer:
        drain = trio.CancelScope()

        async def readers() -> None:
            with drain:
                async with trio.open_nursery() as nursery:
                    for record in low_level:
                        nursery.start_soon(_low_level_reader, load, record["event_type"], record)
                    for record in consumers:
                        nursery.start_soon(_consumer, load, config["subscription_id"], record)

        outer.start_soon(readers)
        limits = httpx.Limits(max_connections=config["publishers"], max_keepalive_connections=config["publishers"])
        async with httpx.AsyncClient(base_url=config["url"], trust_env=False, timeout=REQUEST_TIMEOUT_S,
                                     limits=limits) as client:
            deadline = trio.current_time() + config["load_seconds"]
            async with trio.open_nursery() as publishers:
                for writer in range(config["publishers"]):
                    publishers.start_soon(_publisher, load, client, writer, deadline)
        timings["publish_s"] = time.monotonic() - started
        load.targets = await _newest_offsets(config)
        drain.deadline = trio.current_time() + config["drain_seconds"]
    timings["drain_s"] = time.monotonic() - started - timings["publish_s"]
    return {
        "publishes": load.publishes, "low_level": low_level, "consumers": consumers, "targets": load.targets,
        "statuses": {kind: dict(counts) for kind, counts in load.statuses.items()},
        "read_latency_ms": {key: None if value is None else round(value * 1000, 1) for key, value in
                            percentiles(load.read_latencies_s, 50, 95, 99, 100).items()},
        "redelivered_committed": load.redelivered_committed, "non_problem_errors": load.non_problem_errors,
        "errors": load.errors[:100], "timings": timings,
    }


def main(argv: list[str]) -> None:
    import trio

    config = json.loads(Path(argv[1]).read_text())
    results = trio.run(run_load, config)
    Path(config["output"]).write_text(json.dumps(results))


# -- the test ---------------------------------------------------------------------

@dataclass
class Samples:
    """The server's RSS and open fds, sampled while the load runs."""

    rss_kib: list[int] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)

    def take(self, server) -> None:
        try:
            self.rss_kib.append(server.rss_kib())
            self.fds.append(open_fds(server.pid))
        except (OSError, AssertionError):
            pass  # the server exited; the test notices it


def _setup(url: str, history: History) -> str:
    """The event types, a few events in every partition (so every file a
    partition needs is open before fds are counted), and the subscription."""
    with httpx.Client(base_url=url, trust_env=False, timeout=REQUEST_TIMEOUT_S) as client:
        for i, name in enumerate(EVENT_TYPES):
            assert client.post("/event-types", json=event_type(name, PARTITIONS)).status_code == 201
            warm = [event(100 + i, n) for n in range(10 * PARTITIONS)]
            assert client.post(f"/event-types/{name}/events", json=warm).status_code == 200
            history.record(warm, "ok")
        response = client.post("/subscriptions", json={"owning_application": "reliability-load",
                                                       "event_types": list(EVENT_TYPES), "read_from": "begin"})
        assert response.status_code == 201, response.text
        return response.json()["id"]


def _run_load_process(tmp_path: Path, server, config: dict, samples: Samples) -> dict:
    config_path = tmp_path / "load-config.json"
    config_path.write_text(json.dumps(config))
    with open(tmp_path / "load.out", "w") as out, open(tmp_path / "load.err", "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "tests.reliability.test_load", str(config_path)],
                                   cwd=REPO, stdout=out, stderr=err)
        deadline = time.monotonic() + LOAD_PROCESS_S_MAX
        while process.poll() is None and time.monotonic() < deadline:
            samples.take(server)
            time.sleep(SAMPLE_INTERVAL_S)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
            pytest.fail(f"the load process did not end within {LOAD_PROCESS_S_MAX} s: "
                        f"{(tmp_path / 'load.err').read_text()[-3000:]}")
    assert process.returncode == 0, (tmp_path / "load.err").read_text()[-3000:]
    return json.loads(Path(config["output"]).read_text())


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _settled_fds(server, before: int) -> int:
    """The server's open fds once they are back within `FD_SLACK` of `before`, or after `FD_SETTLE_S`."""
    deadline = time.monotonic() + FD_SETTLE_S
    fds = open_fds(server.pid)
    while abs(fds - before) > FD_SLACK and time.monotonic() < deadline:
        time.sleep(0.1)
        fds = open_fds(server.pid)
    return fds


def test_load_ci_profile_loses_nothing_and_leaks_nothing(tmp_path):
    seed = random.randrange(2**32)
    print(f"\nload seed {seed}")
    report = Report(suite="load", seed=seed, cycles=1)
    server = start(tmp_path, tmp_path / "data")
    try:
        history = History()
        subscription_id = _setup(server.url, history)
        time.sleep(0.5)  # the setup's connections closed on the server's side too
        fds_before = open_fds(server.pid)
        rss_before_kib = server.rss_kib()
        samples = Samples()
        config = {"url": server.url, "subscription_id": subscription_id, "event_types": list(EVENT_TYPES),
                  "partitions": PARTITIONS, "publishers": PUBLISHERS, "batch_events": BATCH_EVENTS,
                  "padding_bytes": PADDING_BYTES, "events_max": EVENTS_MAX, "load_seconds": LOAD_SECONDS,
                  "drain_seconds": DRAIN_SECONDS, "low_level_streams": LOW_LEVEL_STREAMS, "consumers": CONSUMERS,
                  "stream_timeout_s": LOAD_SECONDS + DRAIN_SECONDS + 60, "seed": seed,
                  "output": str(tmp_path / "load-results.json")}
        started = time.monotonic()
        server_cpu_s = _cpu_s(server.pid)
        children_cpu_s = _children_cpu_s()
        results = _run_load_process(tmp_path, server, config, samples)
        load_s = time.monotonic() - started
        server_cpu_s = _cpu_s(server.pid) - server_cpu_s
        load_cpu_s = _children_cpu_s() - children_cpu_s
        fds_after = _settled_fds(server, fds_before)
        samples.take(server)
        outcome = _check(server.url, subscription_id, history, results, report)
        assert server.process.poll() is None, "the server exited"
        problems = server.log_problems()
    finally:
        if server.process.poll() is None:
            server.stop()
        (tmp_path / "server.log").write_text("".join(server.stderr))  # kept with the data dir
    rss_max_kib = max(samples.rss_kib + [rss_before_kib])
    rss_growth_mib = (rss_max_kib - rss_before_kib) / 1024
    statuses = results["statuses"]
    report.non_problem_errors = results["non_problem_errors"]
    report.http_5xx = sum(count for counts in statuses.values() for status, count in counts.items()
                          if status.isdigit() and int(status) >= 500)
    published = sum(len(p[4]) for p in results["publishes"])
    publish_ms = percentiles([p[3] for p in results["publishes"]], 50, 95, 99)
    extra = {
        "events_published": published, "events_read": outcome["read"], "publish_s": round(
            results["timings"]["publish_s"], 1), "drain_s": round(results["timings"]["drain_s"], 1),
        "events_per_s": round(len(history.ok) / results["timings"]["publish_s"]),
        "publish_ms": {k: round(v, 1) for k, v in publish_ms.items() if v is not None},
        "publish_to_read_ms": results["read_latency_ms"], "statuses": statuses,
        "rss_mib_before": round(rss_before_kib / 1024, 1), "rss_mib_max": round(rss_max_kib / 1024, 1),
        "rss_growth_mib": round(rss_growth_mib, 1), "fds_before": fds_before, "fds_max": max(samples.fds or [0]),
        "fds_after": fds_after, "load_process_s": round(load_s, 1), "server_cpu_s": round(server_cpu_s, 1),
        "load_process_cpu_s": round(load_cpu_s, 1), **outcome["extra"],
    }
    print(f"load: acked {len(history.ok)} / read {outcome['read']} / duplicates {report.duplicates} / order "
          f"violations {report.order_violations} / 5xx {report.http_5xx} over {results['timings']['publish_s']:.0f} s")
    print(f"load extra: {json.dumps(extra)}")
    report.finish()
    assert outcome["failures"] == [], "\n".join(outcome["failures"])
    assert abs(fds_after - fds_before) <= FD_SLACK, f"open fds {fds_before} before, {fds_after} after"
    assert rss_growth_mib < RSS_GROWTH_MIB_MAX, f"RSS grew {rss_growth_mib:.0f} MiB"
    assert problems == [], problems[:20]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _check(url: str, subscription_id: str, history: History, results: dict, report: Report) -> dict:
    """Every invariant of the module docstring; `failures` lists what broke."""
    # Every request of the load is valid: any refusal or transport error is a failure.
    failures: list[str] = [f"load process: {e}" for e in results["errors"]]
    for name, outcome, status, _, events in results["publishes"]:
        history.record([{"w": w, "n": n, "metadata": {"eid": eid}} for eid, w, n in events], outcome)
    oracle = {name: read_all(url, name) for name in EVENT_TYPES}
    check(history, {f"{name}/{p}": events for name, by_partition in oracle.items()
                    for p, events in by_partition.items()}, report)
    # acked = read, per partition (plus any info event that was stored).
    read = 0
    for name, by_partition in oracle.items():
        for p, events in by_partition.items():
            eids = [e["metadata"]["eid"] for _, e in events]
            acked = sum(1 for eid in eids if eid in history.ok)
            info = sum(1 for eid in eids if eid in history.info)
            read += len(eids)
            if acked + info != len(eids):
                failures.append(f"{name}/{p}: {len(eids)} read, {acked} acked + {info} info")
            if results["targets"][name][p] != (events[-1][0] if events else -1):
                failures.append(f"{name}/{p}: newest {results['targets'][name][p]} during the load, "
                                f"{events[-1][0] if events else -1} read back")
    # Each low-level stream: the oracle exactly, in order.
    low_level_violations = 0
    for i, record in enumerate(results["low_level"]):
        name = record["event_type"]
        if not record["drained"]:
            failures.append(f"low-level stream {i} ({name}) did not reach the newest offsets in {DRAIN_SECONDS} s")
        for p, received in record["partitions"].items():
            expected = [(offset, e["metadata"]["eid"]) for offset, e in oracle[name][p]]
            got = list(zip(received["offsets"], received["eids"]))
            if got != expected:
                low_level_violations += 1
                failures.append(f"low-level stream {i} {name}/{p}: {len(got)} events, expected {len(expected)}; "
                                f"first difference at {_first_difference(got, expected)}")
    # The consumers together: every event at least once, each the oracle's at its offset.
    expected_sub = {(name, p, offset): e["metadata"]["eid"] for name, by_partition in oracle.items()
                    for p, events in by_partition.items() for offset, e in events}
    deliveries = Counter()
    wrong = 0
    for record in results["consumers"]:
        for name, p, offset, eid in record["received"]:
            deliveries[(name, p, offset)] += 1
            if expected_sub.get((name, p, offset)) != eid:
                wrong += 1
    missing = sum(1 for key in expected_sub if key not in deliveries)
    redelivered = sum(count - 1 for count in deliveries.values() if count > 1)
    if missing or wrong:
        failures.append(f"subscription: {missing} events never delivered, {wrong} delivered with another eid")
    if results["redelivered_committed"]:
        failures.append(f"subscription: {results['redelivered_committed']} committed events delivered again")
    if not any(record["drained"] for record in results["consumers"]):
        failures.append(f"the subscription consumers did not reach the newest offsets in {DRAIN_SECONDS} s")
    # The lag back to 0.
    with httpx.Client(base_url=url, trust_env=False, timeout=REQUEST_TIMEOUT_S) as client:
        stats = client.get(f"/subscriptions/{subscription_id}/stats").json()["items"]
    lag = sum(p.get("unconsumed_events", 0) for item in stats for p in item["partitions"])
    if lag:
        failures.append(f"subscription lag {lag} after the consumers committed: {stats}")
    return {"failures": failures, "read": read, "extra": {
        "acked": len(history.ok), "low_level_violations": low_level_violations,
        "subscription_delivered": sum(deliveries.values()), "subscription_redelivered_uncommitted": redelivered,
        "subscription_redelivered_committed": results["redelivered_committed"], "subscription_lag": lag,
        "commits": sum(record["commits"] for record in results["consumers"])}}


def _first_difference(got: list, expected: list) -> str:
    for i, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            return f"index {i}: got {a}, expected {b}"
    return f"index {min(len(got), len(expected))} (one list ends)"


if __name__ == "__main__":
    main(sys.argv)
