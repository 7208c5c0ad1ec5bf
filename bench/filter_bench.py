"""Filter benchmark: a subscription's backlog streamed through a filter
(docs/filtering.md) that lets 10% of the events through, one that lets
them all through, and no filter, with one server of ours for the whole run.

What it measures: a backlog of `--backlog` order events of about 300 bytes
(1,000,000; `--quick` 20,000) in an event type of **1 partition**, published
once at setup in batches of 1000 (the load client of `publish_bench.py`).
Every event is `publish_bench.order_event` (currency EUR, status created),
except that the first of every ten events of each batch has currency CHF,
so exactly 10% match `{"exact": {"currency": "CHF"}}`; every event matches
`{"exact": {"status": "created"}}` (the same dialect on a field as shallow,
so the two filters cost the server the same per event read). Each run
creates a fresh subscription (a new consumer_group, `read_from` begin) with
its filter, and one stream (`batch_limit=100`, `max_uncommitted_events`
1000 (`--max-uncommitted`), `batch_flush_timeout=0`, else a partial
batch waits a second) reads it to the end, committing every line whose
cursor moved (batches, and keep-alives whose cursors move over filtered
events) before counting it. The run ends when a cursor reaches the
partition's newest offset, shown by a batch's cursor (which covers the
events filtered out after its last event) or by a keep-alive's, or after
`seconds_max` (then flagged). Figures:

- events delivered/s: events received / time to the end;
- backlog records scanned/s: the backlog / time to the end;
- the ratio of that to the unfiltered run's scanned/s in the same round.

The unfiltered stream is the reference, not a ceiling: no bar. Each run is
checked: the end reached, the cursors increasing and never behind the
events they cover, every event matching, the count exact (10%, or all),
every commit answered 204, and afterwards the committed cursor at the
newest offset with no `unconsumed_events`; anything else prints a `!!` line.

How: `publish_bench.py`'s harness: the server pinned to one CPU, the
consumer in a second process (`_client` mode of this script: trio, raw
HTTP/1.1, `subscription_bench.py`'s stream reader) pinned to the other;
the client's and the server's CPU shares are printed, and the mean events
per batch. An unmeasured run of the 10% filter (at most 30 s) first warms
the page cache and code paths; then the three variants alternate round by
round (the order reversing every other round), and we report the median
with min and max, ratios as the median of per-round ratios. Every loop is
capped in count and time; the exit status stays 0.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
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
from publish_bench import (Cpus, Server, create_event_type, http_request, order_event, parse_args, print_machine,
                           publish_spec, run_client, running, start_ours, work_directory)
from subscription_bench import EVENT_MARK, LINES_MAX, Stream, cursor_of

EVENT_TYPE, PARTITIONS = "bench.filter.orders", 1
PUBLISH_BATCH, PUBLISH_BODIES, PUBLISH_SECONDS_MAX = 1000, 8, 900
MATCH_EVERY = 10  # the first of every ten events of a batch is in CHF
BATCH_LIMIT, MAX_UNCOMMITTED = 100, 1000
WARM_SECONDS_MAX = 30
PROBLEMS_MAX = 10  # kept per run
FAIL = "!!"


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    filters: list[dict[str, Any]] | None
    share: float  # of the backlog that matches
    mark: str  # once in every event that matches, as stored


TEN_PERCENT = Variant('10%: {"exact":{"currency":"CHF"}}', [{"exact": {"currency": "CHF"}}], 1 / MATCH_EVERY,
                      '"currency":"CHF"')
ALL = Variant('100%: {"exact":{"status":"created"}}', [{"exact": {"status": "created"}}], 1.0,
              '"status":"created"')
UNFILTERED = Variant("no filter", None, 1.0, '"status":"created"')


@dataclasses.dataclass(frozen=True)
class Limits:
    rounds: int
    backlog: int
    seconds_max: float  # per run
    max_uncommitted: int = MAX_UNCOMMITTED

    @property
    def stream_query(self) -> str:
        return f"batch_limit={BATCH_LIMIT}&max_uncommitted_events={self.max_uncommitted}&batch_flush_timeout=0"


DEFAULT = Limits(rounds=3, backlog=1_000_000, seconds_max=120)
QUICK = Limits(rounds=1, backlog=20_000, seconds_max=60)


@dataclasses.dataclass(frozen=True)
class Backlog:
    oldest: int  # offsets of the partition
    newest: int

    @property
    def records(self) -> int:
        return self.newest - self.oldest + 1


@dataclasses.dataclass(frozen=True)
class FilterSample:
    events: int  # received
    scanned_to: int  # the furthest cursor offset received
    seconds: float  # to the end (or to giving up)
    last_event_s: float  # when the last event arrived
    end_seen_by: str | None  # "batch", "keep-alive", or None: the end was never reached
    lines: int
    keep_alives: int
    statuses: dict[str, int]  # commit answers
    problems: list[str]
    client_cpu: float
    server_cpu: float
    records: int  # the backlog scanned: up to the furthest cursor

    @property
    def rate(self) -> float:
        """Backlog records scanned per second (what the ratio compares)."""
        return self.records / self.seconds

    @property
    def delivered_per_s(self) -> float:
        return self.events / self.seconds


# -- setting up -------------------------------------------------------------------

def write_filter_bodies(path: Path, batch: int, bodies: int, seed: int = 1) -> int:
    """`bodies` JSON arrays of `batch` order events, the first of every
    `MATCH_EVERY` in CHF; mean event bytes."""
    rng = random.Random(seed)
    number = event_bytes = 0
    with open(path, "wb") as f:
        for _ in range(bodies):
            events = []
            for position in range(batch):
                event = order_event(rng, number)
                if position % MATCH_EVERY == 0:
                    event["currency"] = "CHF"
                events.append(event)
                number += 1
            body = orjson.dumps(events)
            event_bytes += len(body) - 1 - batch
            f.write(body + b"\n")
    return event_bytes // (batch * bodies)


def publish_backlog(root: Path, ours: Server, limits: Limits, cpus: Cpus) -> Backlog:
    bodies = root / "filter-bodies.jsonl"
    size = write_filter_bodies(bodies, PUBLISH_BATCH, PUBLISH_BODIES)
    requests = limits.backlog // PUBLISH_BATCH
    spec = publish_spec(ours, EVENT_TYPE, bodies, PUBLISH_LIMITS, warm_s=0.0, window_s=PUBLISH_SECONDS_MAX,
                        requests_max=requests)
    result = run_client(Path(__file__).with_name("publish_bench.py"), spec, cpus, PUBLISH_SECONDS_MAX)
    if result["requests"] != requests or set(result["statuses"]) != {"200"}:
        raise RuntimeError(f"publishing the backlog went wrong: {result}")
    status, body = http_request(ours, "GET", f"/event-types/{EVENT_TYPE}/partitions")
    if status != 200:
        raise RuntimeError(f"reading the partitions answered {status}: {body[:500]!r}")
    (partition,) = orjson.loads(body)
    backlog = Backlog(offset_of(partition["oldest_available_offset"]), offset_of(partition["newest_available_offset"]))
    if backlog.records != limits.backlog:
        raise RuntimeError(f"the partition holds {backlog.records} events, not {limits.backlog}: {partition}")
    print(f"backlog: {limits.backlog:,} events of {size} bytes on average (as sent) in {PARTITIONS} partition, "
          f"{100 // MATCH_EVERY}% of them in CHF; published in batches of {PUBLISH_BATCH} in "
          f"{result['seconds']:.1f} s; offsets {partition['oldest_available_offset']} to "
          f"{partition['newest_available_offset']}", flush=True)
    return backlog


def offset_of(text: str) -> int:
    return int(text.rsplit("-", 1)[1])


def create_subscription(server: Server, variant: Variant) -> str:
    body: dict[str, Any] = {"owning_application": "bench", "event_types": [EVENT_TYPE],
                            "consumer_group": uuid.uuid4().hex, "read_from": "begin"}
    if variant.filters is not None:
        body["filters"] = variant.filters
    status, answer = http_request(server, "POST", "/subscriptions", body)
    if status != 201:
        raise RuntimeError(f"creating a subscription answered {status}: {answer[:500]!r}")
    return str(orjson.loads(answer)["id"])


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def after_run(server: Server, subscription_id: str, backlog: Backlog) -> list[str]:
    """What the subscription's committed cursor and stats show wrong after a run."""
    problems = []
    status, body = http_request(server, "GET", f"/subscriptions/{subscription_id}/cursors")
    items = orjson.loads(body).get("items", []) if status == 200 else None
    if items is None or len(items) != 1 or offset_of(items[0]["offset"]) != backlog.newest:
        problems.append(f"committed cursors: {status} {body[:300]!r}")
    status, body = http_request(server, "GET", f"/subscriptions/{subscription_id}/stats")
    lags = ([p.get("unconsumed_events") for item in orjson.loads(body).get("items", []) for p in item["partitions"]]
            if status == 200 else None)
    if lags != [0]:
        problems.append(f"stats: {status} {body[:300]!r}")
    return problems


def filter_run(server: Server, variant: Variant, backlog: Backlog, limits: Limits, cpus: Cpus,
               label: str = "") -> FilterSample:
    subscription_id = create_subscription(server, variant)
    host, port = server.address
    spec = {"host": host, "port": port, "path": f"/subscriptions/{subscription_id}/events?{limits.stream_query}",
            "oldest": backlog.oldest, "newest": backlog.newest, "mark": variant.mark,
            "seconds_max": limits.seconds_max}
    cpu_start = cpu_seconds(server.process.pid)
    result = run_client(Path(__file__), spec, cpus, limits.seconds_max)
    server_cpu = cpu_seconds(server.process.pid) - cpu_start
    problems = result.pop("problems")
    if result["end_seen_by"] is not None:
        problems += after_run(server, subscription_id, backlog)
    expected = round(backlog.records * variant.share)
    if result["events"] != expected:
        problems.append(f"{result['events']:,} events delivered, expected {expected:,}")
    if set(result["statuses"]) - {"204"}:
        problems.append(f"commit answers {result['statuses']}")
    sample = FilterSample(**result, problems=problems, server_cpu=server_cpu / result["seconds"],
                          records=result["scanned_to"] - backlog.oldest + 1)
    if sample.end_seen_by is None:
        problems.insert(0, f"the end (offset {backlog.newest}) was not reached in {sample.seconds:.1f} s: "
                           f"the furthest cursor was {sample.scanned_to}")
    for problem in problems:
        print(f"    {FAIL} {label}{variant.name}: {problem}", flush=True)
    return sample


# -- reporting and main -----------------------------------------------------------

def print_variant(variant: Variant, samples: Sequence[FilterSample]) -> None:
    ends = Counter(s.end_seen_by or "never" for s in samples)
    print(f"{variant.name}: delivered {spread([s.delivered_per_s for s in samples], ',.0f')} events/s, scanned "
          f"{spread([s.rate for s in samples], ',.0f')} records/s; to the end "
          f"{spread([s.seconds for s in samples], '.2f')} s (last event at "
          f"{spread([s.last_event_s for s in samples], '.2f')} s), end shown by {dict(ends)}; commits/s "
          f"{spread([sum(s.statuses.values()) / s.seconds for s in samples], ',.0f')}, events per batch "
          f"{spread([s.events / max(1, s.lines - s.keep_alives) for s in samples], '.1f')}, keep-alives "
          f"{spread([s.keep_alives for s in samples], 'd')}; server CPU "
          f"{spread([100 * s.server_cpu for s in samples], '.0f')}%, client CPU "
          f"{spread([100 * s.client_cpu for s in samples], '.0f')}%", flush=True)


def print_table(comparisons: Sequence[Comparison[FilterSample]], limits: Limits) -> None:
    header = (f"{'filter (' + format(limits.backlog, ',') + ' events, 1 partition)':<40} "
              f"{'events delivered/s med (min-max)':>34} {'records scanned/s med (min-max)':>34} "
              f"{'scanned vs unfiltered (min-max)':>32}  bar")
    print("\n" + header + "\n" + "-" * len(header))
    for c in comparisons:
        flag = "" if all(not s.problems for s in c.ours) else f"  {FAIL} see above"
        print(f"{c.name:<40} {spread([s.delivered_per_s for s in c.ours], ',.0f'):>34} "
              f"{spread([s.rate for s in c.ours], ',.0f'):>34} {spread(c.ratios, '.2f'):>32}  no bar{flag}")
        record(f"filter {c.name}", f"{spread([s.rate for s in c.ours], ',.0f')} records scanned/s",
               "the unfiltered stream's records/s", spread(c.ratios, ".2f"), "no bar" + flag)
    print("\nbars: none (no bar: the unfiltered stream is the reference)")


def bench(root: Path, limits: Limits, cpus: Cpus) -> None:
    ours = start_ours(root, cpus)
    with running(ours):
        create_event_type(ours, EVENT_TYPE, PARTITIONS)
        backlog = publish_backlog(root, ours, limits, cpus)
        print(f"server: ours {ours.url} (pid {ours.process.pid}); stream {limits.stream_query}\n", flush=True)
        # Unmeasured: warms the page cache and code paths.
        warm = dataclasses.replace(limits, seconds_max=min(limits.seconds_max, WARM_SECONDS_MAX))
        filter_run(ours, TEN_PERCENT, backlog, warm, cpus, "(warm-up) ")
        variants = [UNFILTERED, TEN_PERCENT, ALL]
        samples = alternate(limits.rounds, [
            lambda v=v: filter_run(ours, v, backlog, limits, cpus) for v in variants])  # type: ignore[misc]
    for variant, runs in zip(variants, samples, strict=True):
        print_variant(variant, runs)
    unfiltered = samples[0]
    print_table([Comparison(v.name, runs, unfiltered) for v, runs in zip(variants[1:] + variants[:1],
                                                                         samples[1:] + samples[:1], strict=True)],
                limits)


def main(argv: Sequence[str] | None = None) -> int:
    def extra(parser: Any) -> None:
        parser.add_argument("--backlog", type=int, help=f"events in the backlog (default {DEFAULT.backlog:,}; "
                                                        f"--quick {QUICK.backlog:,}), rounded to {PUBLISH_BATCH}s")
        parser.add_argument("--max-uncommitted", type=int, default=MAX_UNCOMMITTED,
                            help=f"the stream's max_uncommitted_events (default {MAX_UNCOMMITTED})")
    args = parse_args(__doc__ or "", argv, extra)
    limits = QUICK if args.quick else DEFAULT
    if args.rounds is not None:
        limits = dataclasses.replace(limits, rounds=args.rounds)
    if args.backlog is not None:
        limits = dataclasses.replace(limits, backlog=max(1, args.backlog // PUBLISH_BATCH) * PUBLISH_BATCH)
    if args.max_uncommitted < BATCH_LIMIT:
        raise SystemExit(f"--max-uncommitted must be at least {BATCH_LIMIT}")
    limits = dataclasses.replace(limits, max_uncommitted=args.max_uncommitted)
    cpus = Cpus.choose(not args.no_pin)
    print_machine(cpus, limits)
    with work_directory() as root:
        bench(root, limits, cpus)
    return 0


# -- the load client (a separate process) -----------------------------------------

async def consume(spec: dict[str, Any]) -> dict[str, Any]:
    """One stream until a cursor reaches `newest`, committing every line
    whose cursor moved before counting its events; checks as it goes."""
    newest, mark = spec["newest"], spec["mark"].encode()
    position = committed = spec["oldest"] - 1  # the cursor before the first event
    counts, statuses = Counter[str](), Counter[str]()
    problems: list[str] = []
    end_seen_by: str | None = None
    last_event_s = 0.0

    def problem(text: str) -> None:
        if len(problems) < PROBLEMS_MAX:
            problems.append(text)

    cpu_start, start = time.process_time(), time.perf_counter()
    with trio.move_on_after(spec["seconds_max"]):
        try:
            stream = await Stream().open(spec)
            for _ in range(LINES_MAX):
                line = await stream.line()
                raw, partition, offset = cursor_of(line)
                count = line.count(EVENT_MARK)
                counts["lines"] += 1
                if partition != "0" or offset < position or offset > newest or offset - position < count:
                    problem(f"wrong cursor {raw.decode()} after offset {position} on a line of {count} events")
                if count and line.count(mark) != count:
                    problem(f"{count - line.count(mark)} of {count} events at cursor {offset} do not match")
                if offset > committed:
                    statuses[await stream.commit([raw])] += 1
                    committed = offset
                position = max(position, offset)
                if count:
                    counts["events"] += count
                    last_event_s = time.perf_counter() - start
                else:
                    counts["keep_alives"] += 1
                if position >= newest:
                    end_seen_by = "batch" if count else "keep-alive"
                    break
        except (ConnectionError, OSError, RuntimeError, ValueError, trio.BrokenResourceError) as e:
            problem(f"{type(e).__name__}: {e}")
    seconds = time.perf_counter() - start
    return {"events": counts["events"], "scanned_to": position, "seconds": seconds, "last_event_s": last_event_s,
            "end_seen_by": end_seen_by, "lines": counts["lines"], "keep_alives": counts["keep_alives"],
            "statuses": statuses, "problems": problems,
            "client_cpu": (time.process_time() - cpu_start) / seconds}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_client":
        print(json.dumps(trio.run(consume, json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
