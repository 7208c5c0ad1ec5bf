"""Subscription benchmark: consuming through subscriptions of `nakadi serve`
(streams and commits) against the bare Quart-Trio endpoint of `bare_app.py`.

What it measures, with one server of ours for the whole run:

1. Throughput: a backlog of `--backlog` order events of about 300 bytes
   (200,000 in 4 partitions) read from a fresh subscription (`read_from`
   begin) by 1 and by 4 concurrent streams (`batch_limit=100`,
   `max_uncommitted_events=1000`, `batch_flush_timeout=0`, else the last,
   partial batch of each partition waits a second), each committing every
   batch (POST /subscriptions/{id}/cursors, X-Nakadi-StreamId, a connection
   of its own) before counting it: events/s until every event was consumed.
   Ceiling: the bare stream of the same lines (100 stored events a line,
   one line per send, as in `stream_bench.py`) on as many connections, each
   read until it gave its share of the backlog. No bar.
2. Publish -> consumer latency at light load: one stream (`batch_limit=1`,
   `batch_flush_timeout=1`) of a fresh subscription (`read_from` end); a
   producer in the same process POSTs single events at `latency_rate`/s
   with the send time (perf_counter_ns) in the event; latency = arrival on
   the stream minus that time, p50 and p99. A task of its own commits, so
   commits never hold up the reading. Ceiling: the round trip of the same
   POSTs to the bare endpoint at the same rate. Bar (SPEC 6): ours p50 at
   most 2x, p99 at most 3x the bare request's.
3. Memory: the server's VmRSS (/proc/<pid>/status) each second for
   `memory_s` while a producer POSTs batches of 100 at 2,000 events/s and
   one stream reads ten times slower (a batch, its commit, a pause). Bar
   (SPEC 6): after `memory_warm_s` the highest RSS stays within 20% of the
   RSS at the end of the warm-up.

How: `publish_bench.py`'s harness: servers pinned to one CPU, the load in a
second process (`_client` mode of this script: trio, raw HTTP/1.1) pinned
to the other, its CPU share printed. Our consumers count events by their
metadata `"eid":` and remember each (partition, offset) to tell repeats;
bare lines are counted by their cursors. Ours and the ceiling alternate
round by round: medians with min and max, ratios as medians of per-round
ratios. Every loop is capped in count and time. A failed bar prints FAIL;
the exit status stays 0.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import trio
from measure import Comparison, alternate, record, spread
from publish_bench import DEFAULT as PUBLISH_LIMITS
from publish_bench import (Cpus, ResponseReader, Server, create_event_type, http_request, order_event,
                           parse_args, print_machine, publish_spec, run_client, running, start_bare, start_ours,
                           work_directory, write_bodies)

BACKLOG_TYPE, LATENCY_TYPE, MEMORY_TYPE = "bench.subs.backlog", "bench.subs.latency", "bench.subs.memory"
PARTITIONS, CONSUMERS = 4, (1, 4)
PUBLISH_BATCH, PUBLISH_SECONDS_MAX, SAMPLE_EVENTS = 1000, 900, 1000
EVENT_MARK = b'"eid":'  # once in every event, in its metadata
RECEIVE_BYTES, LINES_MAX, GRACE_S = 256 * 1024, 10_000_000, 5.0
MEMORY_EVENTS_PER_S, MEMORY_BATCH, MEMORY_SLOWDOWN = 2000, 100, 10
FAIL = "FAIL <<<<<<<<"


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
    statuses: dict[str, int]  # commit answers
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
    publish_p50_ms: float  # the producer's request round trip
    statuses: dict[str, int]


# -- setting up and measuring ---------------------------------------------------

def stream_path(server: Server, event_type: str, read_from: str, query: str) -> str:
    """The stream path of a new subscription of `event_type`."""
    body = {"owning_application": "bench", "event_types": [event_type], "consumer_group": uuid.uuid4().hex,
            "read_from": read_from}
    status, answer = http_request(server, "POST", "/subscriptions", body)
    if status != 201:
        raise RuntimeError(f"creating a subscription answered {status}: {answer[:500]!r}")
    return f"/subscriptions/{orjson.loads(answer)['id']}/events?{query}"


def publish_backlog(root: Path, ours: Server, limits: Limits, cpus: Cpus) -> None:
    bodies = root / "backlog-bodies.jsonl"
    write_bodies(bodies, PUBLISH_BATCH, 8)
    requests = limits.backlog // PUBLISH_BATCH
    spec = publish_spec(ours, BACKLOG_TYPE, bodies, PUBLISH_LIMITS, warm_s=0.0, window_s=PUBLISH_SECONDS_MAX,
                        requests_max=requests)
    result = run_client(Path(__file__).with_name("publish_bench.py"), spec, cpus, PUBLISH_SECONDS_MAX)
    if result["requests"] != requests or set(result["statuses"]) != {"200"}:
        raise RuntimeError(f"publishing the backlog went wrong: {result}")
    print(f"backlog: {limits.backlog:,} events in {PARTITIONS} partitions, published in {result['seconds']:.1f} s",
          flush=True)


def sample_events(ours: Server, count: int) -> list[bytes]:
    """The first `count` events of partition 0 as stored (enriched), for the bare stream."""
    path = f"/event-types/{BACKLOG_TYPE}/events?batch_limit={count}&stream_limit={count}"
    status, body = http_request(ours, "GET", path, headers={"X-Nakadi-Cursors": '[{"partition":"0","offset":"BEGIN"}]'})
    if status != 200:
        raise RuntimeError(f"sampling the stream answered {status}: {body[:500]!r}")
    events = [orjson.dumps(e) for line in body.splitlines() for e in orjson.loads(line).get("events", [])]
    assert len(events) == count, (len(events), count)
    return events


def client(spec: dict[str, Any], server: Server, cpus: Cpus, timeout_s: float) -> dict[str, Any]:
    return run_client(Path(__file__), {"host": server.address[0], "port": server.address[1], **spec}, cpus, timeout_s)


def consume_run(server: Server, consumers: int, limits: Limits, cpus: Cpus) -> ConsumeSample:
    path = ("/event-types/any/events?batch_limit=100&events_per_send=0" if server.name == "bare" else
            stream_path(server, BACKLOG_TYPE, "begin", "batch_limit=100&max_uncommitted_events=1000"
                                                       "&batch_flush_timeout=0"))
    spec = {"mode": "consume", "path": path, "consumers": consumers, "events": limits.backlog,
            "seconds_max": limits.seconds_max}
    sample = ConsumeSample(**client(spec, server, cpus, limits.seconds_max))
    if sample.events < limits.backlog or sample.received != sample.events or set(sample.statuses) - {"204"}:
        print(f"    !! {server.name}, {consumers} stream(s), of {limits.backlog:,}: {sample}", flush=True)
    return sample


def latency_run(server: Server, limits: Limits, cpus: Cpus) -> LatencySample:
    path = None if server.name == "bare" else stream_path(
        server, LATENCY_TYPE, "end", "batch_limit=1&batch_flush_timeout=1&max_uncommitted_events=1000")
    spec = {"mode": "latency", "event_type": LATENCY_TYPE, "path": path, "rate": limits.latency_rate,
            "count": int(limits.latency_rate * limits.latency_s)}
    sample = LatencySample(**client(spec, server, cpus, limits.latency_s + 2 * GRACE_S))
    if sample.received != sample.sent or set(sample.statuses) - {"200", "commit 204"}:
        print(f"    !! {server.name}: {sample}", flush=True)
    return sample


def memory_run(ours: Server, root: Path, limits: Limits, cpus: Cpus) -> tuple[str, bool]:
    bodies = root / "memory-bodies.jsonl"
    write_bodies(bodies, MEMORY_BATCH, 16, seed=3)
    path = stream_path(ours, MEMORY_TYPE, "begin",
                       f"batch_limit={MEMORY_BATCH}&max_uncommitted_events=1000&batch_flush_timeout=1")
    result = client({"mode": "memory", "event_type": MEMORY_TYPE, "bodies_file": str(bodies), "path": path,
                     "pid": ours.process.pid, "seconds": limits.memory_s}, ours, cpus, limits.memory_s)
    rss = [kb / 1024 for kb in result["rss_kb"]]
    warm = min(limits.memory_warm_s, len(rss) - 1)
    passed = max(rss[warm:]) <= 1.2 * rss[warm]
    return (f"RSS MB first {rss[0]:.1f} min {min(rss):.1f} max {max(rss):.1f} last {rss[-1]:.1f} ({len(rss)} "
            f"samples); after {warm} s of warm-up {rss[warm]:.1f}, highest since {max(rss[warm:]) / rss[warm]:.2f}x "
            f"(bar <= 1.2x) {'PASS' if passed else FAIL}\n        published {result['published']:,} events, "
            f"consumed {result['consumed']:,}; answers {result['statuses']}"), passed


# -- reporting and main -----------------------------------------------------------

def print_tables(throughput: list[Comparison[ConsumeSample]], ours_latency: list[LatencySample],
                 bare_latency: list[LatencySample], memory: str, memory_passed: bool) -> None:
    header = f"{'measurement':<44} {'ours med (min-max)':>30} {'bare med (min-max)':>30} {'ratio (min-max)':>17}  bar"
    print("\n" + header + "\n" + "-" * len(header))
    for c in throughput:
        print(f"{c.name + ', events/s':<44} {spread([s.rate for s in c.ours], ',.0f'):>30} "
              f"{spread([s.rate for s in c.ceiling], ',.0f'):>30} {spread(c.ratios, '.2f'):>17}  no bar")
        record(c.name, f"{spread([s.rate for s in c.ours], ',.0f')} events/s",
               f"{spread([s.rate for s in c.ceiling], ',.0f')} events/s (bare)", spread(c.ratios, ".2f"), "no bar")
    verdicts = []
    for figure, bar in (("p50_ms", 2), ("p99_ms", 3)):
        ours, bare = ([getattr(s, figure) for s in samples] for samples in (ours_latency, bare_latency))
        ratios = [o / b for o, b in zip(ours, bare, strict=True)]
        verdicts.append((f"publish -> consumer {figure[:3]}, ms", statistics.median(ratios) <= bar))
        verdict = f"<= {bar}x {'PASS' if verdicts[-1][1] else FAIL}"
        print(f"{verdicts[-1][0]:<44} {spread(ours, '.2f'):>30} {spread(bare, '.2f'):>30} {spread(ratios, '.2f'):>17}"
              f"  {verdict}")
        record(verdicts[-1][0], f"{spread(ours, '.2f')} ms", f"{spread(bare, '.2f')} ms (bare request)",
               spread(ratios, ".2f"), verdict)
    print(f"\nmemory: {memory}")
    record("server RSS while a consumer reads 10x slower", memory, "its own value after warm-up", "",
           "<= 1.2x " + ("PASS" if memory_passed else FAIL))
    failed = [name for name, passed in [*verdicts, ("memory flat", memory_passed)] if not passed]
    print(f"\nbars: {3 - len(failed)} of 3 PASS" + (f"; FAIL: {', '.join(failed)}" if failed else ""))


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
                c = Comparison(f"subscription, {consumers} stream(s), batch_limit=100", *alternate(limits.rounds, [
                    lambda: consume_run(ours, consumers, limits, cpus),
                    lambda: consume_run(bare, consumers, limits, cpus)]))
                throughput.append(c)
                print(f"{c.name}: ours {spread([s.rate for s in c.ours], ',.0f')} events/s, commits/s "
                      f"{spread([sum(s.statuses.values()) / s.seconds for s in c.ours], ',.0f')}, client CPU "
                      f"{spread([100 * s.client_cpu for s in c.ours], '.0f')}%; bare "
                      f"{spread([s.rate for s in c.ceiling], ',.0f')} events/s, client CPU "
                      f"{spread([100 * s.client_cpu for s in c.ceiling], '.0f')}%", flush=True)
            ours_latency, bare_latency = alternate(limits.rounds, [
                lambda: latency_run(ours, limits, cpus), lambda: latency_run(bare, limits, cpus)])
            print(f"publish -> consumer: {int(limits.latency_rate * limits.latency_s)} events at "
                  f"{limits.latency_rate}/s a round; ours' publish request p50 "
                  f"{spread([s.publish_p50_ms for s in ours_latency], '.2f')} ms (informational)", flush=True)
        print(f"memory: {limits.memory_s} s of publishing {MEMORY_EVENTS_PER_S:,} events/s, one consumer "
              f"{MEMORY_SLOWDOWN}x slower ...", flush=True)
        memory, memory_passed = memory_run(ours, root, limits, cpus)
    print_tables(throughput, ours_latency, bare_latency, memory, memory_passed)


def main(argv: Sequence[str] | None = None) -> int:
    def extra(parser: Any) -> None:
        parser.add_argument("--backlog", type=int, help=f"events in the backlog (default {DEFAULT.backlog:,}; "
                                                        f"--quick {QUICK.backlog:,}), rounded to {PUBLISH_BATCH}s")
    args = parse_args(__doc__ or "", argv, extra)
    limits = QUICK if args.quick else DEFAULT
    if args.rounds is not None:
        limits = dataclasses.replace(limits, rounds=args.rounds)
    if args.backlog is not None:
        limits = dataclasses.replace(limits, backlog=max(8, args.backlog // PUBLISH_BATCH) * PUBLISH_BATCH)
    cpus = Cpus.choose(not args.no_pin)
    print_machine(cpus, limits)
    with work_directory() as root:
        bench(root, limits, cpus)
    return 0


# -- the load client (a separate process) -----------------------------------------

def post(spec: dict[str, Any], path: str, body: bytes, stream_id: str | None = None) -> bytes:
    extra = "" if stream_id is None else f"X-Nakadi-StreamId: {stream_id}\r\n"
    return (f"POST {path} HTTP/1.1\r\nHost: {spec['host']}:{spec['port']}\r\nContent-Type: application/json\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n").encode() + body


class Connection:
    """Requests on one keep-alive connection, reopened when the server closes it after an answer.
    (Each is busy at least every second: Hypercorn's keep-alive timeout, 5 s, never runs out.)"""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.stream: Any = None

    async def request(self, data: bytes) -> str:
        """The answer's status."""
        if self.stream is None:
            self.stream = await trio.open_tcp_stream(self.spec["host"], self.spec["port"])
            self.reader = ResponseReader(self.stream)
        await self.stream.send_all(data)
        status, closing = await self.reader.read_response()
        if closing:
            await self.stream.aclose()
            self.stream = None
        return str(status)


class Stream:
    """One stream (a chunked response) on its own connection, its lines, and
    the commits of a subscription stream on a second connection."""

    async def open(self, spec: dict[str, Any]) -> Stream:
        self.spec, self.raw, self.data = spec, bytearray(), bytearray()
        self.socket = await trio.open_tcp_stream(spec["host"], spec["port"])
        await self.socket.send_all(f"GET {spec['path']} HTTP/1.1\r\nHost: {spec['host']}\r\n\r\n".encode())
        while (end := self.raw.find(b"\r\n\r\n")) < 0:
            await self._fill()
        head = bytes(self.raw[:end]).decode("latin-1")
        del self.raw[:end + 4]
        if not head.startswith("HTTP/1.1 200"):
            raise RuntimeError(f"the stream answered {head!r}: {bytes(self.raw[:500])!r}")
        found = re.search(r"(?im)^x-nakadi-streamid: *(\S+)", head)
        self.stream_id = found and found.group(1)
        self.commits = Connection(spec)
        return self

    async def _fill(self) -> None:
        data = await self.socket.receive_some(RECEIVE_BYTES)
        if not data:
            raise ConnectionError("the server closed the stream")
        self.raw += data

    async def line(self) -> bytes:
        while (end := self.data.find(b"\n")) < 0:
            while (head := self.raw.find(b"\r\n")) < 0:
                await self._fill()
            size = int(bytes(self.raw[:head]).split(b";")[0], 16)
            if size == 0:
                raise ConnectionError("the stream ended")
            while len(self.raw) < head + size + 4:
                await self._fill()
            self.data += self.raw[head + 2:head + 2 + size]
            del self.raw[:head + size + 4]
        line = bytes(self.data[:end])
        del self.data[:end + 1]
        return line

    async def commit(self, cursors: Sequence[bytes]) -> str:
        """Commit cursor objects as received; the answer's status."""
        path = self.spec["path"].split("/events")[0] + "/cursors"
        return await self.commits.request(post(self.spec, path, b'{"items":[' + b",".join(cursors) + b"]}",
                                               self.stream_id))


def cursor_of(line: bytes) -> tuple[bytes, str, int]:
    """The cursor object of a line (`{"cursor":{...}` first, no brace inside), its partition and offset."""
    raw = line[10:line.index(b"}") + 1]
    cursor = orjson.loads(raw)
    return raw, cursor["partition"], int(cursor["offset"].rsplit("-", 1)[1])


async def consume(spec: dict[str, Any]) -> dict[str, Any]:
    """`consumers` streams until every event was seen (ours, each batch
    committed before it counts) or every bare stream gave its share."""
    total, consumers = spec["events"], spec["consumers"]
    seen: dict[str, set[int]] = {}
    counts, statuses = Counter[str](), Counter[str]()
    done = trio.Event()

    async def consumer(k: int) -> None:
        stream = await Stream().open(spec)
        share, last_seen = total // consumers + (k < total % consumers), -1
        for _ in range(LINES_MAX):
            line = await stream.line()
            if stream.stream_id is None:  # bare: one partition from offset 0, no repeats
                last = cursor_of(line)[2]
                count, last_seen = last - last_seen, last
                counts["distinct"] += count
            else:
                if not (count := line.count(EVENT_MARK)):
                    continue  # a keep-alive
                raw, partition, last = cursor_of(line)
                statuses[await stream.commit([raw])] += 1
                offsets = seen.setdefault(partition, set())
                before = len(offsets)
                offsets.update(range(last - count + 1, last + 1))
                counts["distinct"] += len(offsets) - before
            counts["received"] += count
            share -= count
            if counts["distinct"] >= total or (stream.stream_id is None and share <= 0):
                break
        counts["finished"] += 1
        if counts["distinct"] >= total or counts["finished"] == consumers:
            done.set()

    cpu_start, start = time.process_time(), time.perf_counter()
    with trio.move_on_after(spec["seconds_max"]):
        async with trio.open_nursery() as nursery:
            for k in range(consumers):
                nursery.start_soon(consumer, k)
            await done.wait()
            nursery.cancel_scope.cancel()
    seconds = time.perf_counter() - start
    return {"events": counts["distinct"], "received": counts["received"], "seconds": seconds,
            "statuses": statuses, "client_cpu": (time.process_time() - cpu_start) / seconds}


async def latency(spec: dict[str, Any]) -> dict[str, Any]:
    """Publish `count` single events at `rate`/s; latency: their arrival on
    the stream when there is one, else the request's round trip."""
    rng = random.Random(7)
    events = [order_event(rng, i) for i in range(spec["count"])]
    arrivals_ms: list[float] = []
    requests_ms: list[float] = []
    statuses = Counter[str]()
    all_arrived = trio.Event()

    async def consumer(task_status: Any) -> None:
        stream = await Stream().open(spec)
        task_status.started()
        send, receive = trio.open_memory_channel[bytes](spec["count"])

        async def committer() -> None:  # commits without holding up the reading
            async for cursor in receive:
                statuses["commit " + await stream.commit([cursor])] += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(committer)
            for _ in range(LINES_MAX):
                line = await stream.line()
                now = time.perf_counter_ns()
                batch = orjson.loads(line)
                for event in batch.get("events", ()):
                    arrivals_ms.append((now - event["sent_ns"]) / 1e6)
                    send.send_nowait(orjson.dumps(batch["cursor"]))
                if len(arrivals_ms) >= spec["count"]:
                    all_arrived.set()

    async with trio.open_nursery() as nursery:
        if spec["path"] is not None:
            with trio.fail_after(GRACE_S):
                await nursery.start(consumer)
        connection = Connection(spec)
        start = trio.current_time()
        for i, event in enumerate(events):
            await trio.sleep_until(start + i / spec["rate"])
            event["sent_ns"] = time.perf_counter_ns()
            statuses[await connection.request(post(spec, f"/event-types/{spec['event_type']}/events",
                                                   orjson.dumps([event])))] += 1
            requests_ms.append((time.perf_counter_ns() - event["sent_ns"]) / 1e6)
        with trio.move_on_after(GRACE_S if spec["path"] is not None else 0):
            await all_arrived.wait()
        nursery.cancel_scope.cancel()
    measured = arrivals_ms if spec["path"] is not None else requests_ms
    return {"sent": len(events), "received": len(measured), "p50_ms": statistics.median(measured),
            "p99_ms": statistics.quantiles(measured, n=100)[98], "publish_p50_ms": statistics.median(requests_ms),
            "statuses": statuses}


async def memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Publish batches steadily, consume ten times slower, sample the server's RSS each second."""
    bodies = [b for b in Path(spec["bodies_file"]).read_bytes().split(b"\n") if b]
    samples: list[int] = []
    counts, statuses = Counter[str](), Counter[str]()
    start = trio.current_time()

    async def producer() -> None:
        connection = Connection(spec)
        per_s = MEMORY_EVENTS_PER_S / MEMORY_BATCH
        for i in range(int(spec["seconds"] * per_s)):
            await trio.sleep_until(start + i / per_s)
            statuses[await connection.request(post(spec, f"/event-types/{spec['event_type']}/events",
                                                   bodies[i % len(bodies)]))] += 1
            counts["published"] += MEMORY_BATCH

    async def consumer() -> None:
        stream = await Stream().open(spec)
        pause_s = MEMORY_BATCH * MEMORY_SLOWDOWN / MEMORY_EVENTS_PER_S
        for _ in range(LINES_MAX):
            line = await stream.line()
            if count := line.count(EVENT_MARK):
                statuses["commit " + await stream.commit([cursor_of(line)[0]])] += 1
                counts["consumed"] += count
                await trio.sleep_until(start + counts["consumed"] / MEMORY_BATCH * pause_s)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        nursery.start_soon(consumer)
        for i in range(spec["seconds"] + 1):
            await trio.sleep_until(start + i)
            status = Path(f"/proc/{spec['pid']}/status").read_text()
            samples.append(int(status.split("VmRSS:")[1].split()[0]))  # kB
        nursery.cancel_scope.cancel()
    return {"rss_kb": samples, "statuses": statuses, "published": counts["published"], "consumed": counts["consumed"]}


def client_main(spec: dict[str, Any]) -> dict[str, Any]:
    return trio.run({"consume": consume, "latency": latency, "memory": memory}[spec["mode"]], spec)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_client":
        print(json.dumps(client_main(json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
