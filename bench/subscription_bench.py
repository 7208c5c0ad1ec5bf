"""Subscription benchmark: consuming through subscriptions of `nakadi serve`
(streams, commits), against the bare Quart-Trio endpoint of `bare_app.py`.

What it measures, in one run with one server of ours:

1. Throughput: a backlog of `--backlog` order events of about 300 bytes
   (200,000; 4 partitions), read from a fresh subscription (`read_from`
   begin) by 1 and by 4 concurrent streams with `batch_limit=100` and
   `max_uncommitted_events=1000`; each consumer commits every batch (POST
   /subscriptions/{id}/cursors with its X-Nakadi-StreamId, on its own
   connection) before counting it; events/s until every event of the
   backlog was consumed once. Ceiling: the bare stream of the same lines
   (100 events a line, one line per send, as `stream_bench.py`), read by as
   many connections, each until it has its share of the backlog. No bar.
2. Publish -> consumer latency at light load: one stream (`batch_limit=1`,
   `batch_flush_timeout=1`) of a fresh subscription (`read_from` end); a
   producer POSTs one event at a time at `latency_rate` per second, the
   send time (perf_counter_ns, same process) in the event; latency = the
   line's arrival minus that time; p50 and p99. Ceiling: the round trip of
   a POST of the same single events to the bare endpoint at the same rate.
   Bar (SPEC 6): ours p50 at most 2x, p99 at most 3x the bare request's.
3. Memory: the server's VmRSS (/proc/<pid>/status) once a second for
   `memory_s` while a producer POSTs batches of 100 at 2,000 events/s and
   one stream reads ten times slower (a batch of 100, a commit, then a
   pause). Bar (SPEC 6): after `memory_warm_s` of warm-up, the highest RSS
   stays within 20% of the RSS at the end of the warm-up.

How: the harness of `publish_bench.py`: the servers pinned to one CPU, the
load in a second process (`_client` mode of this script, trio, raw
HTTP/1.1) pinned to the other, its CPU share printed. Consumers count
events by their metadata `"eid":` and track (partition, offset) to find
repeats, parsing only the cursor. Ours and the ceiling alternate round by
round; median with min and max, ratios as the median of per-round ratios.
Every loop is capped in count and time. A failed bar prints FAIL; the exit
status stays 0.
"""

from __future__ import annotations

import dataclasses
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from measure import Comparison, alternate, spread
from publish_bench import DEFAULT as PUBLISH_LIMITS
from publish_bench import (Cpus, ResponseReader, Server, create_event_type, http_request, order_event,
                           parse_args, print_machine, publish_spec, run_client, running, start_bare, start_ours,
                           work_directory, write_bodies)

BACKLOG_TYPE, LATENCY_TYPE, MEMORY_TYPE = "bench.subs.backlog", "bench.subs.latency", "bench.subs.memory"
PARTITIONS = 4
PUBLISH_BATCH = 1000
PUBLISH_SECONDS_MAX = 900
SAMPLE_EVENTS = 1000
CONSUMERS = (1, 4)
EVENT_MARK = b'"eid":'  # once per event, in its metadata
RECEIVE_BYTES = 256 * 1024
LINES_MAX = 10_000_000
GRACE_S = 5.0
MEMORY_EVENTS_PER_S, MEMORY_BATCH, MEMORY_SLOWDOWN = 2000, 100, 10


@dataclasses.dataclass(frozen=True)
class Limits:
    rounds: int
    backlog: int
    seconds_max: float
    latency_rate: int
    latency_s: float
    memory_s: int
    memory_warm_s: int


DEFAULT = Limits(rounds=5, backlog=200_000, seconds_max=120, latency_rate=50, latency_s=8, memory_s=60,
                 memory_warm_s=10)
QUICK = Limits(rounds=1, backlog=5_000, seconds_max=30, latency_rate=50, latency_s=2, memory_s=5, memory_warm_s=1)


@dataclasses.dataclass(frozen=True)
class ConsumeSample:
    events: int  # distinct events
    received: int  # repeats included
    seconds: float
    finished: bool
    commits: dict[str, int]  # answers by status
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


@dataclasses.dataclass(frozen=True)
class LatencySample:
    sent: int
    received: int
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]  # publish answers


# -- setting up ---------------------------------------------------------------

def create_subscription(server: Server, event_type: str, read_from: str) -> str:
    body = {"owning_application": "bench", "event_types": [event_type], "consumer_group": uuid.uuid4().hex,
            "read_from": read_from}
    status, answer = http_request(server, "POST", "/subscriptions", body)
    if status != 201:
        raise RuntimeError(f"creating a subscription answered {status}: {answer[:500]!r}")
    return orjson.loads(answer)["id"]


def publish_backlog(root: Path, ours: Server, limits: Limits, cpus: Cpus) -> None:
    bodies = root / "backlog-bodies.jsonl"
    write_bodies(bodies, PUBLISH_BATCH, 8)
    requests = limits.backlog // PUBLISH_BATCH
    spec = publish_spec(ours, BACKLOG_TYPE, bodies, PUBLISH_LIMITS, warm_s=0.0, window_s=PUBLISH_SECONDS_MAX,
                        requests_max=requests)
    result = run_client(Path(__file__).with_name("publish_bench.py"), spec, cpus, PUBLISH_SECONDS_MAX)
    if result["requests"] != requests or set(result["statuses"]) != {"200"}:
        raise RuntimeError(f"publishing the backlog went wrong: {result}")
    print(f"backlog: {limits.backlog:,} events in {PARTITIONS} partitions, published in {result['seconds']:.1f} s "
          f"(informational)", flush=True)


def sample_events(ours: Server, count: int) -> list[bytes]:
    """The first `count` events of partition 0 as stored (enriched), for the bare stream."""
    path = f"/event-types/{BACKLOG_TYPE}/events?batch_limit={count}&stream_limit={count}"
    status, body = http_request(ours, "GET", path, headers={"X-Nakadi-Cursors": '[{"partition":"0","offset":"BEGIN"}]'})
    if status != 200:
        raise RuntimeError(f"sampling the stream answered {status}: {body[:500]!r}")
    events = [orjson.dumps(e) for line in body.splitlines() for e in orjson.loads(line).get("events", [])]
    assert len(events) == count, (len(events), count)
    return events


# -- measuring ----------------------------------------------------------------

def client(spec: dict[str, Any], server: Server, cpus: Cpus, timeout_s: float) -> dict[str, Any]:
    host, port = server.address
    return run_client(Path(__file__), {"host": host, "port": port, **spec}, cpus, timeout_s)


def consume_run(server: Server, consumers: int, limits: Limits, cpus: Cpus) -> ConsumeSample:
    if server.name == "bare":
        path = "/event-types/any/events?batch_limit=100&events_per_send=0"
    else:
        path = (f"/subscriptions/{create_subscription(server, BACKLOG_TYPE, 'begin')}/events?batch_limit=100"
                f"&max_uncommitted_events=1000&batch_flush_timeout=0")
    spec = {"mode": "consume", "path": path, "consumers": consumers, "events": limits.backlog,
            "seconds_max": limits.seconds_max}
    sample = ConsumeSample(**client(spec, server, cpus, limits.seconds_max))
    if not sample.finished or sample.received != sample.events or set(sample.commits) - {"204"}:
        print(f"    !! {server.name}, {consumers} consumer(s): {sample}", flush=True)
    return sample


def latency_run(server: Server, limits: Limits, cpus: Cpus) -> LatencySample:
    path = None
    if server.name != "bare":
        subscription = create_subscription(server, LATENCY_TYPE, "end")
        path = f"/subscriptions/{subscription}/events?batch_limit=1&batch_flush_timeout=1&max_uncommitted_events=1000"
    spec = {"mode": "latency", "event_type": LATENCY_TYPE, "stream_path": path, "rate": limits.latency_rate,
            "count": int(limits.latency_rate * limits.latency_s)}
    sample = LatencySample(**client(spec, server, cpus, limits.latency_s + GRACE_S))
    if sample.received != sample.sent or set(sample.statuses) - {"200", "commit 204"}:
        print(f"    !! {server.name}: {sample}", flush=True)
    return sample


def memory_run(ours: Server, root: Path, limits: Limits, cpus: Cpus) -> dict[str, Any]:
    bodies = root / "memory-bodies.jsonl"
    write_bodies(bodies, MEMORY_BATCH, 16, seed=3)
    subscription = create_subscription(ours, MEMORY_TYPE, "begin")
    spec = {"mode": "memory", "event_type": MEMORY_TYPE, "bodies_file": str(bodies), "pid": ours.process.pid,
            "seconds": limits.memory_s,
            "stream_path": f"/subscriptions/{subscription}/events?batch_limit={MEMORY_BATCH}"
                           f"&max_uncommitted_events=1000&batch_flush_timeout=1"}
    return client(spec, ours, cpus, limits.memory_s)


# -- reporting ----------------------------------------------------------------

def print_consume(c: Comparison[ConsumeSample]) -> None:
    def side(samples: Sequence[ConsumeSample]) -> str:
        return (f"{spread([s.rate for s in samples], ',.0f')} events/s  "
                f"client CPU {spread([100 * s.client_cpu for s in samples], '.0f')}%  "
                f"finished {sum(s.finished for s in samples)} of {len(samples)}")
    print(c.name)
    print(f"    ours : {side(c.ours)}  commits/s "
          f"{spread([sum(s.commits.values()) / s.seconds for s in c.ours], ',.0f')}")
    print(f"    bare : {side(c.ceiling)}")
    print(f"    ratio: {spread(c.ratios, '.2f')}  no bar", flush=True)


def latency_verdicts(ours: list[LatencySample], bare: list[LatencySample]) -> list[tuple[str, str, str, str, bool]]:
    """(figure, ours, bare, ratio, passed) for p50 (bar 2x) and p99 (bar 3x)."""
    rows = []
    for figure, bar in (("p50_ms", 2.0), ("p99_ms", 3.0)):
        ratios = [getattr(o, figure) / getattr(b, figure) for o, b in zip(ours, bare, strict=True)]
        rows.append((f"latency {figure[:3]} (bar <= {bar:g}x)", spread([getattr(s, figure) for s in ours], ".2f"),
                     spread([getattr(s, figure) for s in bare], ".2f"), spread(ratios, ".2f"),
                     statistics.median(ratios) <= bar))
    return rows


def memory_verdict(result: dict[str, Any], limits: Limits) -> tuple[str, bool]:
    rss = [kb / 1024 for kb in result["rss_kb"]]
    warm = min(limits.memory_warm_s, len(rss) - 1)
    baseline, later = rss[warm], rss[warm:]
    passed = max(later) <= 1.2 * baseline
    return (f"RSS MB first {rss[0]:.1f} min {min(rss):.1f} max {max(rss):.1f} last {rss[-1]:.1f}; after "
            f"{warm} s warm-up {baseline:.1f}, max/that {max(later) / baseline:.2f} (bar <= 1.2) "
            f"{'PASS' if passed else 'FAIL <<<<<<<<'}; {len(rss)} samples, published {result['published']:,} "
            f"events, consumed {result['consumed']:,}, answers {result['statuses']}"), passed


def bench(root: Path, limits: Limits, cpus: Cpus) -> None:
    ours = start_ours(root, cpus)
    with running(ours):
        for name in (BACKLOG_TYPE, LATENCY_TYPE, MEMORY_TYPE):
            create_event_type(ours, name, PARTITIONS)
        publish_backlog(root, ours, limits, cpus)
        events_file = root / "stream-events.jsonl"
        events_file.write_bytes(b"\n".join(sample_events(ours, min(SAMPLE_EVENTS, limits.backlog // 8))) + b"\n")
        bare = start_bare(root, cpus, "--events-file", str(events_file), "--stream-events", str(limits.backlog),
                          "--batch-limits", "100")
        print(f"servers: ours {ours.url} (pid {ours.process.pid}), bare {bare.url} (pid {bare.process.pid})\n",
              flush=True)
        with running(bare):
            consume_run(ours, 1, limits, cpus)  # unmeasured: warms the page cache and code paths
            consume_run(bare, 1, limits, cpus)
            throughput = []
            for consumers in CONSUMERS:
                ours_samples, bare_samples = alternate(limits.rounds, [
                    lambda: consume_run(ours, consumers, limits, cpus),
                    lambda: consume_run(bare, consumers, limits, cpus)])
                throughput.append(Comparison(f"subscription stream, {consumers} consumer(s), batch_limit=100",
                                             ours_samples, bare_samples))
                print_consume(throughput[-1])
            ours_latency, bare_latency = alternate(limits.rounds, [
                lambda: latency_run(ours, limits, cpus), lambda: latency_run(bare, limits, cpus)])
        print(f"\nmemory: {limits.memory_s} s of publishing {MEMORY_EVENTS_PER_S:,} events/s, one consumer "
              f"{MEMORY_SLOWDOWN}x slower ...", flush=True)
        memory, memory_passed = memory_verdict(memory_run(ours, root, limits, cpus), limits)

    header = f"{'throughput':<48} {'ours events/s med (min-max)':>30} {'bare events/s med (min-max)':>30} " \
             f"{'ratio (min-max)':>17}  bar"
    print("\n" + header + "\n" + "-" * len(header))
    for c in throughput:
        print(f"{c.name:<48} {spread([s.rate for s in c.ours], ',.0f'):>30} "
              f"{spread([s.rate for s in c.ceiling], ',.0f'):>30} {spread(c.ratios, '.2f'):>17}  no bar")
    header = f"{'publish -> consumer, ms (bare: request)':<48} {'ours med (min-max)':>30} " \
             f"{'bare med (min-max)':>30} {'ratio (min-max)':>17}  bar"
    print("\n" + header + "\n" + "-" * len(header))
    rows = latency_verdicts(ours_latency, bare_latency)
    for figure, ours_text, bare_text, ratio, passed in rows:
        print(f"{figure:<48} {ours_text:>30} {bare_text:>30} {ratio:>17}  {'PASS' if passed else 'FAIL <<<<<<<<'}")
    print(f"\nmemory: {memory}")
    verdicts = [(figure, passed) for figure, *_, passed in rows] + [("memory flat", memory_passed)]
    failed = [name for name, passed in verdicts if not passed]
    print(f"\nbars: {len(verdicts) - len(failed)} of {len(verdicts)} PASS"
          + (f"; FAIL: {', '.join(failed)}" if failed else ""))


def main(argv: Sequence[str] | None = None) -> int:
    def extra(parser: Any) -> None:
        parser.add_argument("--backlog", type=int, help=f"events in the backlog (default {DEFAULT.backlog:,}; "
                                                        f"--quick {QUICK.backlog:,}), rounded to {PUBLISH_BATCH}s")
    args = parse_args(__doc__ or "", argv, extra)
    limits = QUICK if args.quick else DEFAULT
    if args.rounds is not None:
        limits = dataclasses.replace(limits, rounds=args.rounds)
    if args.backlog is not None:
        limits = dataclasses.replace(limits, backlog=max(8 * PUBLISH_BATCH, args.backlog // PUBLISH_BATCH
                                                         * PUBLISH_BATCH))
    cpus = Cpus.choose(not args.no_pin)
    print_machine(cpus, limits)
    with work_directory() as root:
        bench(root, limits, cpus)
    return 0


# -- the load client (a separate process) -------------------------------------

def post(spec: dict[str, Any], path: str, body: bytes, stream_id: str | None = None) -> bytes:
    extra = "" if stream_id is None else f"X-Nakadi-StreamId: {stream_id}\r\n"
    return (f"POST {path} HTTP/1.1\r\nHost: {spec['host']}:{spec['port']}\r\nContent-Type: application/json\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n").encode() + body


class Connection:
    """Requests on one keep-alive connection, reopened when the server closes it."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.stream: Any = None

    async def request(self, data: bytes) -> int:
        import trio
        for attempt in range(2):  # a keep-alive connection may be closed under us once
            if self.stream is None:
                self.stream = await trio.open_tcp_stream(self.spec["host"], self.spec["port"])
                self.reader = ResponseReader(self.stream)
            try:
                await self.stream.send_all(data)
                status, closing = await self.reader.read_response()
            except (trio.BrokenResourceError, ConnectionError):
                await self.stream.aclose()
                self.stream = None
                if attempt:
                    raise
                continue
            if closing:
                await self.stream.aclose()
                self.stream = None
            return status
        raise AssertionError("unreachable")


class StreamReader:
    """The lines of one streamed (chunked) response on its own connection."""

    async def open(self, spec: dict[str, Any], path: str) -> str | None:
        """Send the GET, read the head; the X-Nakadi-StreamId, if any."""
        import trio
        self.stream = await trio.open_tcp_stream(spec["host"], spec["port"])
        self.raw, self.data = bytearray(), bytearray()
        await self.stream.send_all(f"GET {path} HTTP/1.1\r\nHost: {spec['host']}:{spec['port']}\r\n\r\n".encode())
        while (end := self.raw.find(b"\r\n\r\n")) < 0:
            await self._fill()
        lines = bytes(self.raw[:end]).decode("latin-1").split("\r\n")
        del self.raw[:end + 4]
        if lines[0].split(" ")[1] != "200":
            raise RuntimeError(f"the stream answered {lines[0]}: {bytes(self.raw[:500])!r}")
        headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in lines[1:])}
        return headers.get("x-nakadi-streamid")

    async def _fill(self) -> None:
        data = await self.stream.receive_some(RECEIVE_BYTES)
        if not data:
            raise ConnectionError("the server closed the stream")
        self.raw += data

    async def line(self) -> bytes | None:
        """The next line; None at the end of the body."""
        while (end := self.data.find(b"\n")) < 0:
            while (head := self.raw.find(b"\r\n")) < 0:
                await self._fill()
            size = int(bytes(self.raw[:head]).split(b";")[0], 16)
            if size == 0:
                return None
            while len(self.raw) < head + size + 4:
                await self._fill()
            self.data += self.raw[head + 2:head + 2 + size]
            del self.raw[:head + size + 4]
        line = bytes(self.data[:end])
        del self.data[:end + 1]
        return line


def cursor_of(line: bytes) -> tuple[bytes, str, int]:
    """The cursor object of a line (`{"cursor":{...}` first; no brace inside), its partition and offset."""
    raw = line[10:line.index(b"}") + 1]
    cursor = orjson.loads(raw)
    return raw, cursor["partition"], int(cursor["offset"].rsplit("-", 1)[1])


async def consume(spec: dict[str, Any]) -> dict[str, Any]:
    """`consumers` streams until every event was seen once (ours) or each
    bare stream gave its share; ours commit each batch before counting it."""
    import trio
    total, consumers = spec["events"], spec["consumers"]
    seen: dict[str, set[int]] = {}
    counts = {"distinct": 0, "received": 0}
    commits: dict[str, int] = {}
    ended = trio.Event()
    shares_left = [consumers]

    async def consumer(k: int) -> None:
        reader = StreamReader()
        stream_id = await reader.open(spec, spec["path"])
        committer = Connection(spec)
        share, share_last = total // consumers + (k < total % consumers), -1
        for _ in range(LINES_MAX):
            line = await reader.line()
            if line is None:
                break
            if stream_id is None:  # bare: one partition from offset 0, no repeats; count by cursor
                raw, partition, last = cursor_of(line)
                count, share_last = last - share_last, last
                counts["distinct"] += count
            else:
                count = line.count(EVENT_MARK)
                if not count:
                    continue  # a keep-alive
                raw, partition, last = cursor_of(line)
                status = await committer.request(post(spec, spec["path"].split("/events")[0] + "/cursors",
                                                      b'{"items":[' + raw + b"]}", stream_id))
                commits[str(status)] = commits.get(str(status), 0) + 1
                offsets = seen.setdefault(partition, set())
                before = len(offsets)
                offsets.update(range(last - count + 1, last + 1))
                counts["distinct"] += len(offsets) - before
            counts["received"] += count
            share -= count
            if counts["distinct"] >= total or (stream_id is None and share <= 0):
                break
        shares_left[0] -= 1
        if counts["distinct"] >= total or not shares_left[0]:
            ended.set()

    cpu_start, start = time.process_time(), time.perf_counter()
    with trio.move_on_after(spec["seconds_max"]):
        async with trio.open_nursery() as nursery:
            for k in range(consumers):
                nursery.start_soon(consumer, k)
            await ended.wait()
            nursery.cancel_scope.cancel()
    seconds = time.perf_counter() - start
    return {"events": counts["distinct"], "received": counts["received"], "seconds": seconds,
            "finished": counts["distinct"] >= total, "commits": commits, "client_cpu": (time.process_time() - cpu_start) / seconds}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


async def latency(spec: dict[str, Any]) -> dict[str, Any]:
    """Publish `count` single events at `rate`/s; with a stream, latency is
    arrival on the stream, else the request's round trip."""
    import trio
    rng = random.Random(7)
    events = [order_event(rng, i) for i in range(spec["count"])]
    path = f"/event-types/{spec['event_type']}/events"
    latencies_ms: list[float] = []
    statuses: dict[str, int] = {}
    streaming = spec["stream_path"] is not None
    ready, all_received = trio.Event(), trio.Event()

    async def consumer() -> None:
        reader = StreamReader()
        stream_id = await reader.open(spec, spec["stream_path"])
        ready.set()
        latest: dict[str, bytes] = {}  # the newest cursor of each partition
        wake = trio.Event()

        async def committer() -> None:  # commits the newest cursor, without holding up the reading
            nonlocal wake
            connection = Connection(spec)
            for _ in range(LINES_MAX):
                await wake.wait()
                wake = trio.Event()
                cursors = b",".join(latest.values())
                latest.clear()
                status = await connection.request(post(spec, spec["stream_path"].split("/events")[0] + "/cursors",
                                                       b'{"items":[' + cursors + b"]}", stream_id))
                statuses[f"commit {status}"] = statuses.get(f"commit {status}", 0) + 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(committer)
            for _ in range(LINES_MAX):
                line = await reader.line()
                now = time.perf_counter_ns()
                if line is None:
                    raise ConnectionError("the stream ended early")
                batch = orjson.loads(line)
                for event in batch.get("events", []):
                    latencies_ms.append((now - event["sent_ns"]) / 1e6)
                if batch.get("events"):
                    latest[batch["cursor"]["partition"]] = orjson.dumps(batch["cursor"])
                    wake.set()
                if len(latencies_ms) >= spec["count"]:
                    all_received.set()

    async def producer() -> None:
        connection = Connection(spec)
        start = trio.current_time()
        for i, event in enumerate(events):
            await trio.sleep_until(start + i / spec["rate"])
            event["sent_ns"] = time.perf_counter_ns()
            status = await connection.request(post(spec, path, orjson.dumps([event])))
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if not streaming:
                latencies_ms.append((time.perf_counter_ns() - event["sent_ns"]) / 1e6)

    async with trio.open_nursery() as nursery:
        if streaming:
            nursery.start_soon(consumer)
            with trio.fail_after(GRACE_S):
                await ready.wait()
        await producer()
        with trio.move_on_after(GRACE_S if streaming else 0):
            await all_received.wait()
        nursery.cancel_scope.cancel()
    return {"sent": len(events), "received": len(latencies_ms), "p50_ms": percentile(latencies_ms, 0.5),
            "p99_ms": percentile(latencies_ms, 0.99), "statuses": statuses}


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Publish batches steadily and consume ten times slower, sampling the server's RSS each second."""
    import trio
    bodies = [b for b in Path(spec["bodies_file"]).read_bytes().split(b"\n") if b]
    path = f"/event-types/{spec['event_type']}/events"
    samples: list[int] = []
    statuses: dict[str, int] = {}
    counts = {"published": 0, "consumed": 0}
    start = trio.current_time()

    async def sampler() -> None:
        for i in range(spec["seconds"] + 1):
            await trio.sleep_until(start + i)
            samples.append(rss_kb(spec["pid"]))

    async def producer() -> None:
        connection = Connection(spec)
        per_s = MEMORY_EVENTS_PER_S / MEMORY_BATCH
        for i in range(int(spec["seconds"] * per_s)):
            await trio.sleep_until(start + i / per_s)
            status = await connection.request(post(spec, path, bodies[i % len(bodies)]))
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            counts["published"] += MEMORY_BATCH

    async def consumer() -> None:
        reader = StreamReader()
        stream_id = await reader.open(spec, spec["stream_path"])
        connection = Connection(spec)
        pause_s = MEMORY_BATCH * MEMORY_SLOWDOWN / MEMORY_EVENTS_PER_S
        for _ in range(LINES_MAX):
            line = await reader.line()
            if line is None:
                raise ConnectionError("the stream ended early")
            if count := line.count(EVENT_MARK):
                commit = b'{"items":[' + cursor_of(line)[0] + b"]}"
                status = await connection.request(post(spec, spec["stream_path"].split("/events")[0] + "/cursors",
                                                       commit, stream_id))
                statuses[f"commit {status}"] = statuses.get(f"commit {status}", 0) + 1
                counts["consumed"] += count
                await trio.sleep_until(start + counts["consumed"] / MEMORY_BATCH * pause_s)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        nursery.start_soon(consumer)
        await sampler()
        nursery.cancel_scope.cancel()
    return {"rss_kb": samples, "statuses": statuses, **counts}


def client_main(spec: dict[str, Any]) -> dict[str, Any]:
    import trio
    return trio.run({"consume": consume, "latency": latency, "memory": memory}[spec["mode"]], spec)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_client":
        print(json.dumps(client_main(json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
