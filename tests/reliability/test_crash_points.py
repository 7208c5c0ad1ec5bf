"""RELIABILITY.md (1b), named crash points: the server kills itself
(`NAKADI_FAULT=<point>:<n>`, storage/faults.py) at the n-th pass of each
point, n = 1..M as SQLite walks its k-th I/O call; then it is restarted
without the fault and checked.

- `log.written`, `log.synced`, `log.durable`: two writers publish small
  batches to a 2-partition type until the server dies.
- `log.roll.synced`, `log.roll.created`: the same with ~10 KB publishes and
  64 KiB segments, so every few publishes roll a segment.
- `cursor.commit.written`: events are published, then one consumer
  streams a subscription and commits every batch until the server dies.

Each point gets its own data directory, kept across its n. Expected after
every restart: nothing acknowledged is lost, no duplicate, gap or order
violation; the publishes in flight are info (present at most once); every
cursor whose commit was answered 204 is still committed, and the commit in
flight is info. A server that never reaches its crash point fails the test.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from storage.faults import CRASH_POINTS
from tests.reliability.crashing import (
    Commits,
    Consumer,
    CrashReport,
    Writers,
    artifacts_on_failure,
    check_commits,
    info_repeats,
    keep_log,
    log_sizes,
    removed_bytes,
    seed_from_environment,
    wait_for_exit,
)
from tests.reliability.harness import History, Report, check, event, event_type, publish, read_all, sized, start

pytestmark = pytest.mark.slow

PASSES = range(1, sized(4, 12) + 1)
WALL_SECONDS = sized(90, 900)  # a cap, not a target (~25 s here); reaching it fails
DIE_WITHIN_SECONDS = 15
PUBLISHES_MAX = 300  # per writer and run; every crash point is reached long before
NAME = "points"
PARTITIONS = 2
ENV = {"NAKADI_STORAGE_SEGMENT_BYTES_MAX": "65536"}
ROLL_POINTS = ("log.roll.synced", "log.roll.created")
COMMIT_POINT = "cursor.commit.written"
EVENTS_PER_CONSUMER_RUN = 60  # with batch_limit=2, at least 30 commits per run


class PointState:
    """One crash point's data directory, history and commits across its n."""

    def __init__(self, tmp_path, point: str) -> None:
        self.point = point
        self.workdir = tmp_path / point
        self.data = self.workdir / "data"
        self.logs = self.workdir / "logs"
        self.workdir.mkdir()
        self.history = History()
        self.commits = Commits()
        self.subscription_id = ""
        self.last_check: Report | None = None
        self.lost_partitions: set = set()
        self.commits_present = 0
        self.writer = 0


def test_crash_points_keep_acknowledged_events_and_commits(tmp_path):
    seed = seed_from_environment(dict(os.environ))
    with artifacts_on_failure(tmp_path, "crash_points", seed):
        run(tmp_path, seed)


def run(tmp_path, seed: int) -> None:
    print(f"crash points seed={seed} passes={list(PASSES)}")
    report = CrashReport("crash_points", seed)
    problems: list[str] = []
    deadline = time.monotonic() + WALL_SECONDS
    states = [PointState(tmp_path, point) for point in CRASH_POINTS]
    for state in states:
        for n in PASSES:
            if time.monotonic() > deadline:
                problems.append(f"wall clock cap of {WALL_SECONDS} s reached before {state.point}:{n}")
                break
            problems += crash_and_check(state, n, seed, report)
            report.cycles += 1
    for state in states:
        if state.last_check is not None:
            for name in ("events_acked", "events_lost", "duplicates", "gaps", "order_violations", "info_present",
                         "info_total", "http_5xx", "non_problem_errors"):
                setattr(report, name, getattr(report, name) + getattr(state.last_check, name))
        report.commits_acked += state.commits.acked_count
        report.commits_info += len(state.commits.unanswered)
        report.commits_info_present += state.commits_present
        report.commits_lost += len(state.lost_partitions)
        print(f"{state.point}: acked {len(state.history.ok)}, info {len(state.history.info)}, "
              f"commits acked {state.commits.acked_count}, commits unanswered {len(state.commits.unanswered)}")
    report.finish()
    assert not problems, "\n".join(problems[:20])


def crash_and_check(state: PointState, n: int, seed: int, report: CrashReport) -> list[str]:
    """Run the server with the fault until it kills itself, restart it
    without, check; the problems found."""
    where = f"({state.point}:{n}, seed {seed}, data {state.data}, server logs {state.logs})"
    problems = []
    server = start(state.workdir, state.data, env={**ENV, "NAKADI_FAULT": f"{state.point}:{n}"})
    try:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            if not state.subscription_id:
                create(client, state)
            if state.point == COMMIT_POINT:
                died, errors = consume_until_dead(client, server, state, report)
            else:
                died, errors = publish_until_dead(server, state, n, seed, report)
        problems += [f"{error} {where}" for error in errors]
        if not died:
            problems.append(f"the server never reached its crash point {where}")
        elif server.process.returncode != -signal.SIGKILL:
            problems.append(f"the server exited with {server.process.returncode}, not -SIGKILL {where}")
    finally:
        if server.process.poll() is None:
            server.kill()
        server.wait()
        keep_log(server, state.logs / f"{n:03d}-fault.log")
    sizes_killed = log_sizes(state.data)
    began = time.monotonic()
    server = start(state.workdir, state.data, env=ENV)
    report.recovery_ms.append((time.monotonic() - began) * 1000)
    report.recovery_removed_bytes += removed_bytes(sizes_killed, log_sizes(state.data))
    try:
        read = read_all(server.url, NAME)
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            found, lost, state.commits_present = check_commits(client, state.subscription_id, state.commits)
        problems += [f"{p} {where}" for p in found]
        state.lost_partitions |= lost
        status, _, _ = server.stop()
        if status != 0:
            problems.append(f"the checking server exited with {status} {where}")
    finally:
        if server.process.poll() is None:
            server.kill()
        keep_log(server, state.logs / f"{n:03d}-check.log")
    problems += [f"server log: {line.strip()} {where}" for line in server.log_problems()]
    checked = Report(f"crash_points {state.point}:{n}", seed)
    check(state.history, read, checked)
    checked.duplicates += info_repeats(state.history, read)
    state.last_check = checked
    bad = {name: value for name, value in checked.as_json().items()
           if name in ("events_lost", "duplicates", "gaps", "order_violations") and value}
    if bad:
        problems.append(f"{bad} {where}")
    return problems


def create(client: httpx.Client, state: PointState) -> None:
    created = client.post("/event-types", json=event_type(NAME, PARTITIONS))
    assert created.status_code == 201, created.text
    subscription = client.post("/subscriptions", json={"owning_application": "reliability",
                                                       "event_types": [NAME], "read_from": "begin"})
    assert subscription.status_code == 201, subscription.text
    state.subscription_id = subscription.json()["id"]


def publish_until_dead(server, state: PointState, n: int, seed: int, report: Report) -> tuple[bool, list[str]]:
    rolls = state.point in ROLL_POINTS
    writers = Writers(server.url, [NAME], state.history, report, count=2, first_writer=state.writer,
                      seed=seed + n, batch=(5, 15) if rolls else (1, 5),
                      padding=(600, 1000) if rolls else (0, 50), publishes_max=PUBLISHES_MAX)
    state.writer += 2
    writers.start()
    died = wait_for_exit(server, DIE_WITHIN_SECONDS, writers.all_done)
    writers.stop()
    return died, writers.errors


def consume_until_dead(client: httpx.Client, server, state: PointState, report: Report) -> tuple[bool, list[str]]:
    """Publish a backlog (commits do not pass the crash point), then commit
    batch by batch until the server dies."""
    errors = []
    for i in range(0, EVENTS_PER_CONSUMER_RUN, 4):
        events = [event(state.writer, i + j) for j in range(4)]
        if publish(client, NAME, events, state.history, report) != "ok":
            errors.append("a publish before the commits was not acknowledged")
    state.writer += 1
    consumer = Consumer(server.url, state.subscription_id, state.commits, report,
                        query="batch_limit=2&max_uncommitted_events=10&batch_flush_timeout=0")
    consumer.start()
    died = wait_for_exit(server, DIE_WITHIN_SECONDS, lambda: not consumer.is_alive())
    consumer.finish()
    return died, errors + consumer.errors
