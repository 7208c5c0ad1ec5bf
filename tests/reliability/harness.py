"""The reliability suites' harness (RELIABILITY.md, "Common harness"):
event types and events the suites publish, a history of every publish
(ok: answered 200; fail: answered with an error, so nothing of it may be
stored; info: no answer, so it may or may not be), reading every partition
back from BEGIN as the oracle, the invariant checks, and the report line.

Sizes: `sized(ci, long)` is the CI value unless `RELIABILITY_LONG=1`
(`make reliability LONG=1`).
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.server import Server, own_environment, start_server

LONG = os.environ.get("RELIABILITY_LONG") == "1"
REPORTS = Path(os.environ.get("RELIABILITY_REPORTS", "")) if os.environ.get("RELIABILITY_REPORTS") else None
REPORT_LINES: list[str] = []  # printed at the end of the pytest run (tests/conftest.py)


def sized(ci: int, long: int) -> int:
    return long if LONG else ci


def event_type(name: str, partitions: int) -> dict:
    """A business event type with `partitions` partitions, random partitioning."""
    return {"name": name, "owning_application": "reliability", "category": "business",
            "enrichment_strategies": ["metadata_enrichment"], "partition_strategy": "random",
            "default_statistic": {"messages_per_minute": 1, "message_size": 1,
                                  "read_parallelism": partitions, "write_parallelism": partitions},
            "schema": {"type": "json_schema", "schema": json.dumps({"type": "object"})}}


def event(writer: int, n: int, padding: int = 0) -> dict:
    """Event `n` of `writer`, with a unique eid (and `padding` bytes of filler)."""
    body = {"w": writer, "n": n, "metadata": {"eid": str(uuid.uuid4()), "occurred_at": "2024-01-01T00:00:00Z"}}
    if padding:
        body["pad"] = "x" * padding
    return body


def start(workdir: Path, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Server:
    """A server on a free port of 127.0.0.1, with extra environment variables."""
    return start_server(workdir, data_dir, *args, env={**own_environment(), **(env or {})})


@dataclass
class Report:
    """The counters of one suite; `finish` prints its JSON line and fails on
    any loss, duplicate, gap, order violation, 5xx, non-Problem error or
    unauthorized request accepted."""

    suite: str
    seed: int
    cycles: int = 0
    events_acked: int = 0
    events_lost: int = 0
    duplicates: int = 0
    gaps: int = 0
    order_violations: int = 0
    info_present: int = 0
    info_total: int = 0
    recovery_ms: list[float] = field(default_factory=list)
    truncated_bytes: int = 0
    http_5xx: int = 0
    non_problem_errors: int = 0
    unauthorized_accepted: int = 0
    refused_stored: int = 0  # events of a refused publish found stored (I8)
    started: float = field(default_factory=time.monotonic)

    def as_json(self) -> dict:
        values = {name: getattr(self, name) for name in (
            "suite", "seed", "cycles", "events_acked", "events_lost", "duplicates", "gaps", "order_violations",
            "info_present", "info_total")}
        values["recovery_ms_p50"] = round(statistics.median(self.recovery_ms), 1) if self.recovery_ms else None
        values["recovery_ms_max"] = round(max(self.recovery_ms), 1) if self.recovery_ms else None
        values.update(truncated_bytes=self.truncated_bytes, http_5xx=self.http_5xx,
                      non_problem_errors=self.non_problem_errors, unauthorized_accepted=self.unauthorized_accepted,
                      refused_stored=self.refused_stored,
                      duration_s=round(time.monotonic() - self.started, 1))
        return values

    def finish(self) -> None:
        line = json.dumps(self.as_json())
        print(f"\nreliability report: {line}")
        REPORT_LINES.append(line)
        if REPORTS is not None:
            REPORTS.mkdir(parents=True, exist_ok=True)
            (REPORTS / f"{self.suite}.json").write_text(line + "\n")
        bad = {name: value for name, value in self.as_json().items() if name in (
            "events_lost", "duplicates", "gaps", "order_violations", "http_5xx", "non_problem_errors",
            "unauthorized_accepted", "refused_stored") and value}
        assert not bad, f"{self.suite}: {bad}"


@dataclass
class History:
    """Every event published, by eid: acknowledged, refused, or unknown."""

    ok: dict[str, tuple[int, int]] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    info: set[str] = field(default_factory=set)

    def record(self, events: list[dict], outcome: str) -> None:
        target = {"ok": None, "fail": self.failed, "info": self.info}[outcome]
        for e in events:
            eid = e["metadata"]["eid"]
            if target is None:
                self.ok[eid] = (e["w"], e["n"])
            else:
                target.add(eid)


def publish(client: httpx.Client, name: str, events: list[dict], history: History, report: Report) -> str:
    """POST `events`; record and return the outcome (ok / partial / fail / info)."""
    try:
        response = client.post(f"/event-types/{name}/events", json=events)
    except httpx.HTTPError:
        history.record(events, "info")
        return "info"
    if response.status_code == 200:
        history.record(events, "ok")
        return "ok"
    if response.status_code == 207:  # the submitted items are stored, the failed ones are not
        statuses = [item["publishing_status"] for item in response.json()]
        history.record([e for e, st in zip(events, statuses, strict=True) if st == "submitted"], "ok")
        history.record([e for e, st in zip(events, statuses, strict=True) if st != "submitted"], "fail")
        return "partial"
    check_error(response, report)
    # A 5xx after the request was sent may still have stored the batch.
    history.record(events, "info" if response.status_code >= 500 else "fail")
    return "fail"


def check_error(response: httpx.Response, report: Report) -> None:
    """Count a 5xx, and an error whose body is not Problem JSON."""
    if response.status_code >= 500 and response.status_code != 507:
        report.http_5xx += 1
    if response.status_code >= 400 and not response.headers.get("content-type", "").startswith(
            "application/problem+json"):
        report.non_problem_errors += 1


def read_all(url: str, name: str) -> dict[str, list[tuple[int, dict]]]:
    """Every retained event of `name` from BEGIN, per partition: (offset, event)."""
    with httpx.Client(base_url=url, trust_env=False, timeout=60) as client:
        views = client.get(f"/event-types/{name}/partitions").json()
        total = sum(_offset(v["newest_available_offset"]) - _offset(v["oldest_available_offset"]) + 1 for v in views)
        out: dict[str, list[tuple[int, dict]]] = {v["partition"]: [] for v in views}
        if total <= 0:
            return out
        cursors = [{"partition": v["partition"], "offset": "BEGIN"} for v in views]
        with client.stream("GET", f"/event-types/{name}/events?batch_limit={min(1000, total)}&stream_limit={total}"
                           "&batch_flush_timeout=1&stream_timeout=60",
                           headers={"X-Nakadi-Cursors": json.dumps(cursors)}) as response:
            assert response.status_code == 200, response.read()
            for line in response.iter_lines():
                batch = json.loads(line)
                events = batch.get("events", [])
                last = _offset(batch["cursor"]["offset"])
                for i, e in enumerate(events):
                    out[batch["cursor"]["partition"]].append((last - len(events) + 1 + i, e))
        return out


def _offset(text: str) -> int:
    return int(text.rsplit("-", 1)[1]) if not text.endswith("--1") else -1


def check(history: History, read: dict[str, list[tuple[int, dict]]], report: Report) -> None:
    """Add I1-I4 violations of `read` against `history` to `report`."""
    seen: dict[str, int] = defaultdict(int)
    for partition, events in read.items():
        offsets = [offset for offset, _ in events]
        report.gaps += sum(1 for a, b in zip(offsets, offsets[1:]) if b != a + 1)
        last_n: dict[int, int] = {}
        for _, e in events:
            seen[e["metadata"]["eid"]] += 1
            writer, n = e.get("w"), e.get("n")
            if writer is not None and n is not None:
                if n <= last_n.get(writer, -1):
                    report.order_violations += 1
                last_n[writer] = n
    report.events_acked = len(history.ok)
    report.events_lost = sum(1 for eid in history.ok if eid not in seen)
    report.duplicates = sum(count - 1 for eid, count in seen.items() if count > 1 and eid not in history.info) + sum(
        count - 2 for eid, count in seen.items() if count > 2 and eid in history.info)
    report.refused_stored = sum(1 for eid in history.failed if eid in seen)
    report.info_total = len(history.info)
    report.info_present = sum(1 for eid in history.info if eid in seen)


@dataclass
class Exited:
    """A server that exited before it was ready: its exit status and output."""

    status: int
    stdout: str
    stderr: str


def launch(workdir: Path, data_dir: Path, *args: str, env: dict[str, str] | None = None,
           preexec_fn=None, wrap=None) -> Server | Exited:
    """Like `start`, but a server that exits before it is ready comes back
    as `Exited` instead of raising, so a test can check a refused start.

    `preexec_fn` runs in the child before exec (e.g. to set a resource
    limit); `wrap(command)` returns the command line to run instead (e.g.
    the server inside `unshare`, which must end by exec'ing it so that its
    pid is the server's)."""
    import subprocess

    from tests.server import NAKADI, START_SECONDS

    ready = workdir / f"ready-{time.monotonic_ns()}"
    command = [str(NAKADI), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir),
               "--ready-file", str(ready), *args]
    process = subprocess.Popen(wrap(command) if wrap else command, cwd=workdir,
                               env={**own_environment(), **(env or {})}, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, preexec_fn=preexec_fn)
    server = Server(process, "", data_dir)
    server.drain()
    deadline = time.monotonic() + START_SECONDS
    while not ready.exists():
        if process.poll() is not None:
            return Exited(*server.wait())
        if time.monotonic() > deadline:
            process.kill()
            status, stdout, stderr = server.wait()
            raise RuntimeError(f"the server was not ready within {START_SECONDS} s ({status}): {stdout}{stderr}")
        time.sleep(0.02)
    server.url = ready.read_text().strip()
    return server


def read_raw(url: str, name: str, partition: str, after: str = "BEGIN", count: int = 1) -> list[bytes]:
    """The stream lines of `count` events of one partition after cursor
    offset `after`, one event per line, as bytes: what a byte-for-byte
    comparison of two reads needs."""
    with httpx.Client(base_url=url, trust_env=False, timeout=60) as client:
        cursors = [{"partition": partition, "offset": after}]
        with client.stream("GET", f"/event-types/{name}/events?batch_limit=1&stream_limit={count}"
                           "&batch_flush_timeout=1&stream_timeout=60",
                           headers={"X-Nakadi-Cursors": json.dumps(cursors)}) as response:
            body = response.read()
            assert response.status_code == 200, body
            return [line for line in body.split(b"\n") if line]


def open_fds(pid: int) -> int:
    """How many file descriptors process `pid` has open (/proc/<pid>/fd)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def percentiles(values: list[float], *qs: float) -> dict[str, float | None]:
    """`{"p50": ...}` for each q in `qs` (nearest rank), None when `values` is empty."""
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for q in qs:
        key = f"p{q:g}"
        out[key] = ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] if ordered else None
    return out
