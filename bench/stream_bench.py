"""Stream benchmark: reading a backlog through the low-level stream of
`nakadi serve` against a bare Quart-Trio endpoint streaming the same lines.

What it measures: `GET /event-types/{name}/events` from `BEGIN` of a backlog
of `--backlog` events of about 300 bytes as published (1,000,000 by
default; 1 partition), with `stream_limit` = the backlog, and
`batch_limit=100` and `batch_limit=1`: events/s. Beside each figure,
`bench/bare_app.py` streams the same lines, pre-built in memory: the same
cursors, and events as we store them (the first 1000 of our stream,
enriched, cycled), grouped two ways:

- one line per send: SPEC's "bare stream of the same lines" (~1.6 M
  events/s for 100-event lines, ~18,000 for one-event lines here), the
  ceiling the bars compare with;
- grouped as our server sends them: every line of one storage read (up to
  `READ_RECORDS_MAX` events of `broker/event_stream.py`) in one send, for
  reference: what a bare endpoint coalescing as we do would reach.

How: the backlog is published first (batches of 1000 by the load client of
`publish_bench.py`; its rate is printed, informational). Both servers run
for the whole benchmark pinned to one CPU; a client in a second process,
pinned to another CPU, reads the raw response and counts events by the
cursors of the lines (no JSON parsing, no scan of every byte: that made
the client the limit), until the stream ends or `--seconds-max` pass,
whichever is first; its CPU share is printed. The runs rotate round by
round; we report the median with min and max, ratios as the median of
per-round ratios. Every loop is capped in count and time.

Bars (SPEC section 6): `batch_limit=100` at least 0.4x the bare stream of
the same lines; `batch_limit=1` at least 0.7x the bare one-event-line
stream (one line per send; ours writes every ready line in one send, which
is how it can pass). A failed bar prints FAIL; the exit status stays 0.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from measure import Comparison, alternate, spread
from publish_bench import DEFAULT as PUBLISH_LIMITS
from publish_bench import (
    Cpus,
    Server,
    create_event_type,
    parse_args,
    print_machine,
    print_table,
    publish_spec,
    run_client,
    running,
    start_bare,
    start_ours,
    work_directory,
    write_bodies,
)

from broker.cursors import OFFSET_DIGITS, OFFSET_PREFIX
from broker.event_stream import READ_BYTES_MAX, READ_RECORDS_MAX

EVENT_TYPE = "bench.stream"
PUBLISH_BATCH = 1000
PUBLISH_SECONDS_MAX = 900
SAMPLE_EVENTS = 1000
CURSOR_HEAD = b'{"cursor":{"partition":"0","offset":"' + OFFSET_PREFIX.encode()
RECEIVE_BYTES = 1024 * 1024
RECEIVES_MAX = 10_000_000
# The end of a chunked body (Hypercorn keeps the connection open after it,
# `Connection: close` or not); no chunk of lines can end so.
LAST_CHUNK = b"\r\n0\r\n\r\n"


@dataclasses.dataclass(frozen=True)
class Limits:
    rounds: int
    backlog: int
    seconds_max: float


DEFAULT = Limits(rounds=5, backlog=1_000_000, seconds_max=3.0)
QUICK = Limits(rounds=1, backlog=20_000, seconds_max=1.0)


@dataclasses.dataclass(frozen=True)
class StreamSample:
    """One stream read: what arrived in `seconds`, whether the stream ended
    by itself, and the share of a CPU the client used meanwhile."""

    events: int
    nbytes: int
    seconds: float
    ended: bool
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.events_per_s

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / self.seconds / 1e6


# -- setting up ---------------------------------------------------------------

def publish_backlog(root: Path, ours: Server, limits: Limits, cpus: Cpus) -> None:
    bodies = root / "backlog-bodies.jsonl"
    size = write_bodies(bodies, PUBLISH_BATCH, 8)
    requests = limits.backlog // PUBLISH_BATCH
    spec = publish_spec(ours, EVENT_TYPE, bodies, PUBLISH_LIMITS, warm_s=0.0, window_s=PUBLISH_SECONDS_MAX,
                        requests_max=requests)
    result = run_client(Path(__file__).with_name("publish_bench.py"), spec, cpus, PUBLISH_SECONDS_MAX)
    if result["requests"] != requests or set(result["statuses"]) != {"200"}:
        raise RuntimeError(f"publishing the backlog went wrong: {result}")
    print(f"backlog: {limits.backlog:,} events of {size} bytes as published, in {result['seconds']:.1f} s "
          f"({limits.backlog / result['seconds']:,.0f} events/s, batches of {PUBLISH_BATCH}, durable; "
          f"informational)", flush=True)


def sample_events(ours: Server, count: int) -> list[bytes]:
    """The first `count` events of our stream, as stored (enriched, compact JSON)."""
    connection = http.client.HTTPConnection(*ours.address, timeout=60)
    try:
        connection.request("GET", f"/event-types/{EVENT_TYPE}/events?batch_limit={count}&stream_limit={count}",
                           headers={"X-Nakadi-Cursors": '[{"partition":"0","offset":"BEGIN"}]'})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"sampling the stream answered {response.status}: {body[:500]!r}")
    events = [orjson.dumps(event) for line in body.splitlines() for event in orjson.loads(line).get("events", [])]
    assert len(events) == count, (len(events), count)
    return events


# -- measuring ----------------------------------------------------------------

def stream_run(server: Server, batch_limit: int, events_per_send: int | None, limits: Limits, cpus: Cpus
               ) -> StreamSample:
    host, port = server.address
    query = f"batch_limit={batch_limit}&stream_limit={limits.backlog}&batch_flush_timeout=30"
    if events_per_send is not None:
        query += f"&events_per_send={events_per_send}"
    spec = {"host": host, "port": port, "path": f"/event-types/{EVENT_TYPE}/events?{query}",
            "seconds_max": limits.seconds_max, "batch_limit": batch_limit}
    result = run_client(Path(__file__), spec, cpus, limits.seconds_max)
    sample = StreamSample(**result)
    if sample.ended and sample.events != limits.backlog:
        print(f"    !! {server.name}: the stream ended after {sample.events:,} of {limits.backlog:,} events",
              flush=True)
    return sample


def print_stream(c: Comparison[StreamSample], ceiling: str) -> None:
    def side(samples: Sequence[StreamSample]) -> str:
        ended = sum(s.ended for s in samples)
        return (f"{spread([s.events_per_s for s in samples], ',.0f')} events/s  "
                f"{spread([s.mb_per_s for s in samples], ',.1f')} MB/s  "
                f"client CPU {spread([100 * s.client_cpu for s in samples], '.0f')}%  "
                f"ran to the end {ended} of {len(samples)}")
    print(c.name)
    print(f"    ours : {side(c.ours)}")
    print(f"    {ceiling:<5}: {side(c.ceiling)}")
    print(f"    ratio: {spread(c.ratios, '.2f')}  {c.verdict}", flush=True)


def bench_streams(root: Path, limits: Limits, cpus: Cpus) -> list[Comparison[StreamSample]]:
    ours = start_ours(root, cpus)
    results: list[Comparison[StreamSample]] = []
    with running(ours):
        create_event_type(ours, EVENT_TYPE, 1)
        publish_backlog(root, ours, limits, cpus)
        events = sample_events(ours, min(SAMPLE_EVENTS, limits.backlog))
        events_file = root / "stream-events.jsonl"
        events_file.write_bytes(b"\n".join(events) + b"\n")
        event_bytes = sum(map(len, events)) // len(events)
        per_send = min(READ_RECORDS_MAX, max(1, READ_BYTES_MAX // event_bytes))
        print(f"stored events: {event_bytes} bytes on average (enriched); ours sends up to {per_send} events "
              f"per send, and so does the coalesced bare reference", flush=True)
        started = time.perf_counter()
        bare = start_bare(root, cpus, "--events-file", str(events_file), "--stream-events", str(limits.backlog),
                          "--batch-limits", "1,100", "--events-per-send", str(per_send))
        print(f"bare streams built in {time.perf_counter() - started:.1f} s\n"
              f"servers: ours {ours.url} (pid {ours.process.pid}), bare {bare.url} (pid {bare.process.pid})\n",
              flush=True)
        with running(bare):
            for batch_limit, bar in ((100, 0.4), (1, 0.7)):
                # One unmeasured pass each to warm caches (page cache, code paths).
                stream_run(ours, batch_limit, None, limits, cpus)
                stream_run(bare, batch_limit, per_send, limits, cpus)
                ours_samples, coalesced, one_line = alternate(limits.rounds, [
                    lambda: stream_run(ours, batch_limit, None, limits, cpus),
                    lambda: stream_run(bare, batch_limit, per_send, limits, cpus),
                    lambda: stream_run(bare, batch_limit, 0, limits, cpus)])
                pair = [Comparison(f"stream batch_limit={batch_limit}", ours_samples, one_line, bar),
                        Comparison(f"stream batch_limit={batch_limit} vs bare coalesced as ours", ours_samples,
                                   coalesced)]
                print_stream(pair[0], "bare")
                print(f"    bare, coalesced as ours (reference): "
                      f"{spread([s.events_per_s for s in coalesced], ',.0f')} events/s; "
                      f"ratio ours/that {spread(pair[1].ratios, '.2f')}", flush=True)
                results += pair
    return results


def main(argv: Sequence[str] | None = None) -> int:
    def extra(parser: Any) -> None:
        parser.add_argument("--backlog", type=int, help=f"events in the backlog (default {DEFAULT.backlog:,}; "
                                                        f"--quick {QUICK.backlog:,}), rounded to {PUBLISH_BATCH}s")
        parser.add_argument("--seconds-max", type=float, help="cap on each stream read")
    args = parse_args(__doc__ or "", argv, extra)
    limits = QUICK if args.quick else DEFAULT
    if args.rounds is not None:
        limits = dataclasses.replace(limits, rounds=args.rounds)
    if args.backlog is not None:
        limits = dataclasses.replace(limits, backlog=max(PUBLISH_BATCH, args.backlog // PUBLISH_BATCH * PUBLISH_BATCH))
    if args.seconds_max is not None:
        limits = dataclasses.replace(limits, seconds_max=args.seconds_max)
    cpus = Cpus.choose(not args.no_pin)
    print_machine(cpus, limits)
    with work_directory() as root:
        results = bench_streams(root, limits, cpus)
    print_table(results, "bare")
    return 0


# -- the reading client (a separate process) ----------------------------------

def client_main(spec: dict[str, Any]) -> dict[str, Any]:
    """Read one stream to its last chunk or for `seconds_max`, touching the
    bytes as little as possible (scanning every byte for markers would cost
    the client more than the bare server spends sending them): events are
    counted by cursors. The stream starts at offset 0, so after a line
    whose cursor is offset N, N + 1 events have arrived. When the time cap
    cuts the stream, the last line seen may be partial: its `batch_limit`
    events are not counted."""
    request = (f"GET {spec['path']} HTTP/1.1\r\nHost: {spec['host']}:{spec['port']}\r\n"
               f"X-Nakadi-Cursors: [{{\"partition\":\"0\",\"offset\":\"BEGIN\"}}]\r\n"
               f"Connection: close\r\n\r\n").encode()
    buffer = bytearray(RECEIVE_BYTES)
    with socket.create_connection((spec["host"], spec["port"]), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cpu_start = time.process_time()
        start = time.perf_counter()
        deadline = start + spec["seconds_max"]
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed before the headers: {head!r}")
            head += data
        head, _, rest = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"the stream answered {head!r} {rest[:300]!r}")
        last_offset = _last_cursor(rest, len(rest), -1)
        nbytes = len(rest)
        tail = rest[-len(LAST_CHUNK):]
        ended = tail == LAST_CHUNK
        for _ in range(RECEIVES_MAX):
            now = time.perf_counter()
            if ended or now >= deadline:
                break
            sock.settimeout(deadline - now)
            try:
                n = sock.recv_into(buffer)
            except TimeoutError:
                break
            if not n:
                raise ConnectionError("the server closed the stream before its last chunk")
            nbytes += n
            last_offset = _last_cursor(buffer, n, last_offset)
            tail = (tail + bytes(buffer[max(0, n - len(LAST_CHUNK)):n]))[-len(LAST_CHUNK):]
            ended = tail == LAST_CHUNK
        seconds = time.perf_counter() - start
        client_cpu = (time.process_time() - cpu_start) / seconds
    events = last_offset + 1 if ended else max(0, last_offset + 1 - spec["batch_limit"])
    return {"events": events, "nbytes": nbytes, "seconds": seconds, "ended": ended, "client_cpu": client_cpu}


def _last_cursor(data: bytes | bytearray, n: int, previous: int) -> int:
    """The offset of the last cursor wholly in `data[:n]`, else `previous`.
    (A cursor split between two receives is missed; a later one counts.)"""
    end = n
    for _ in range(2):  # the last head found may have its offset cut off
        at = data.rfind(CURSOR_HEAD, 0, end)
        if at < 0:
            return previous
        digits = bytes(data[at + len(CURSOR_HEAD):at + len(CURSOR_HEAD) + OFFSET_DIGITS])
        if len(digits) == OFFSET_DIGITS and digits.isdigit():
            return int(digits)
        end = at
    return previous


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_client":
        print(json.dumps(client_main(json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
