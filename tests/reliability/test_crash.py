"""RELIABILITY.md (1a), random kill: cycles of start, publish and commit,
SIGKILL after 50-500 ms, restart on the same data directory.

Four writer threads publish batches of 1-20 events to two event types of
four partitions each and wait for every answer (History: ok / fail /
info); one subscription consumer streams one of the types and commits
each batch. Segments are small (64 KiB), so the logs recovery scans span
many segments after a few cycles. After every restart each cursor whose
commit was answered 204 must still be committed; after the last one,
everything is read back from BEGIN and checked (I1-I4).

Replay a run with RELIABILITY_SEED=<seed> (the timing still differs).
"""

from __future__ import annotations

import os
import random
import time

import httpx
import pytest

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
)
from tests.reliability.harness import History, check, event_type, read_all, sized, start

pytestmark = pytest.mark.slow

CYCLES = sized(30, 500)
WALL_SECONDS = sized(100, 3000)
WRITERS = 4
PARTITIONS = 4
NAMES = ["crash.a", "crash.b"]
ENV = {"NAKADI_STORAGE_SEGMENT_BYTES_MAX": "65536"}
KILL_AFTER_SECONDS = (0.05, 0.5)


def test_crash_random_kill_keeps_acknowledged_events_and_commits(tmp_path):
    seed = seed_from_environment(dict(os.environ))
    with artifacts_on_failure(tmp_path, "crash", seed):
        run(tmp_path, seed)


def run(tmp_path, seed: int) -> None:
    print(f"crash seed={seed} cycles={CYCLES}")
    rng = random.Random(seed)
    report = CrashReport("crash", seed)
    history, commits = History(), Commits()
    data, logs = tmp_path / "data", tmp_path / "logs"
    problems: list[str] = []
    errors: list[str] = []
    deadline = time.monotonic() + WALL_SECONDS
    subscription_id = ""
    sizes_killed: dict = {}
    commits_lost: set = set()

    def where(cycle: int) -> str:
        return f"(seed {seed}, cycle {cycle}, data {data}, server logs {logs})"

    for cycle in range(CYCLES + 1):
        last = cycle == CYCLES or time.monotonic() > deadline
        began = time.monotonic()
        server = start(tmp_path, data, env=ENV)
        if cycle:
            report.recovery_ms.append((time.monotonic() - began) * 1000)
            report.recovery_removed_bytes += removed_bytes(sizes_killed, log_sizes(data))
        try:
            with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
                if cycle == 0:
                    subscription_id = create_types_and_subscription(client)
                else:
                    found, lost, present = check_commits(client, subscription_id, commits)
                    problems += [f"{p} {where(cycle)}" for p in found]
                    commits_lost |= lost
                    report.commits_info_present = present
            if last:
                read = {f"{name}/{p}": events for name in NAMES for p, events in read_all(server.url, name).items()}
                break
            run_until_killed(server, cycle, subscription_id, history, commits, report, errors, rng)
            sizes_killed = log_sizes(data)
            report.cycles += 1
        finally:
            if server.process.poll() is None:
                status, _, _ = server.stop()
                if last and status != 0:
                    problems.append(f"the last server exited with {status} {where(cycle)}")
            keep_log(server, logs / f"cycle-{cycle:04d}.log")
            problems += [f"server log: {line.strip()} {where(cycle)}" for line in server.log_problems()]

    check(history, read, report)
    report.duplicates += info_repeats(history, read)
    report.commits_acked = commits.acked_count
    report.commits_info = len(commits.unanswered)
    report.commits_lost = len(commits_lost)
    print(f"writer threads' errors: {len(errors)}; data {data}; server logs {logs}")
    report.finish()
    assert not errors, f"{errors[:3]} {where(report.cycles)}"
    assert not problems, f"{problems[:10]}"
    assert report.events_acked > 0 and report.commits_acked > 0, f"nothing was acknowledged {where(report.cycles)}"


def create_types_and_subscription(client: httpx.Client) -> str:
    for name in NAMES:
        created = client.post("/event-types", json=event_type(name, PARTITIONS))
        assert created.status_code == 201, created.text
    subscription = client.post("/subscriptions", json={"owning_application": "reliability",
                                                       "event_types": [NAMES[0]], "read_from": "begin"})
    assert subscription.status_code == 201, subscription.text
    return subscription.json()["id"]


def run_until_killed(server, cycle, subscription_id, history, commits, report, errors, rng) -> None:
    """Publish and consume for a random 50-500 ms, then SIGKILL the server
    and wait (bounded) for every thread."""
    writers = Writers(server.url, NAMES, history, report, count=WRITERS, first_writer=cycle * WRITERS,
                      seed=rng.randrange(2**32)).start()
    consumer = Consumer(server.url, subscription_id, commits, report)
    consumer.start()
    time.sleep(rng.uniform(*KILL_AFTER_SECONDS))
    server.kill()
    writers.stop()
    consumer.finish()
    errors += writers.errors + consumer.errors
