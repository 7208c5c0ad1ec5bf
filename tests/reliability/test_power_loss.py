"""RELIABILITY.md (1c), simulated power loss: what `kill -9` cannot show,
because the page cache outlives the process.

The server runs with `NAKADI_SYNC_TRACE` (storage/faults.py), which records
the length of every file at each fdatasync and every directory fsync. After
a SIGKILL, every file under `event-types/` is put back to a state a power
cut could have left:

- a segment (`.log`) is cut to a random length between what was last
  synced and what was written, and the cut tail is sometimes zero-filled
  instead of truncated (the blocks were allocated, their data never
  written); a segment whose directory was not fsynced after it was created
  may vanish, or be empty;
- an index (derived data, never synced) is kept, deleted, cut anywhere or
  zero-filled from anywhere.

Every third cycle the server also runs with `NAKADI_FAULT` at a segment
roll, so some cuts meet a roll caught half way. `metadata.db` is left
alone: SQLite syncs itself, outside the trace. After the cut, what is on
disk counts as durable (the machine "rebooted"): the harness appends that
baseline to the trace before the restart.
After the restart, only events answered 200 must be readable (I1), with no
duplicate, gap or order violation (I2-I4). Writers never retry, so an
unanswered publish may be read back at most once.

Replay a run with RELIABILITY_SEED=<seed> (the timing still differs).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.reliability.crashing import (
    CrashReport,
    Writers,
    artifacts_on_failure,
    info_repeats,
    keep_log,
    log_sizes,
    removed_bytes,
    seed_from_environment,
)
from tests.reliability.harness import History, Report, check, event, event_type, publish, read_all, sized, start

pytestmark = pytest.mark.slow

CYCLES = sized(10, 100)
WALL_SECONDS = sized(60, 1500)
WRITERS = 4
PARTITIONS = 4
NAMES = ["power.a", "power.b"]
ENV = {"NAKADI_STORAGE_SEGMENT_BYTES_MAX": "65536"}
KILL_AFTER_SECONDS = (0.1, 0.6)
# Every third cycle the server kills itself just after a segment roll
# created a file, before the directory fsync (if it gets there before the
# SIGKILL), so the cut meets a new segment whose name was never synced.
ROLL_FAULT_EVERY = 3
# A trace line the harness adds: the file is gone, forget what was synced of it.
DELETED = -2


@dataclass
class Trace:
    """What the sync trace says, per path: the last synced length, the line
    of the first sync of the file (since it was last deleted), and the
    lines of each directory fsync."""

    synced: dict[str, int] = field(default_factory=dict)
    first_line: dict[str, int] = field(default_factory=dict)
    dir_syncs: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def read(cls, path: Path) -> Trace:
        trace = cls()
        text = path.read_text() if path.exists() else ""
        for number, line in enumerate(text.splitlines()):
            name, _, length_text = line.rpartition("\t")
            length = int(length_text)
            if length == -1:
                trace.dir_syncs[name].append(number)
            elif length == DELETED:
                trace.synced.pop(name, None)
                trace.first_line.pop(name, None)
            else:
                trace.synced[name] = length
                trace.first_line.setdefault(name, number)
        return trace

    def name_durable(self, path: str) -> bool:
        """Whether the file's directory was fsynced after the file's first sync."""
        first = self.first_line.get(path)
        return first is not None and any(line > first for line in self.dir_syncs.get(os.path.dirname(path), []))


def test_power_loss_keeps_every_acknowledged_event(tmp_path):
    seed = seed_from_environment(dict(os.environ))
    with artifacts_on_failure(tmp_path, "power_loss", seed):
        run(tmp_path, seed)


def run(tmp_path, seed: int) -> None:
    print(f"power loss seed={seed} cycles={CYCLES}")
    rng = random.Random(seed)
    report = CrashReport("power_loss", seed)
    history = History()
    data, logs, trace_path = tmp_path / "data", tmp_path / "logs", tmp_path / "sync-trace"
    env = {**ENV, "NAKADI_SYNC_TRACE": str(trace_path)}
    problems: list[str] = []
    errors: list[str] = []
    deadline = time.monotonic() + WALL_SECONDS
    sizes_cut: dict = {}
    died_at_fault = 0

    def where(cycle: int) -> str:
        return (f"(seed {seed}, cycle {cycle}, data {data}, server logs {logs}, "
                f"cuts {logs / f'cuts-{cycle - 1:04d}.txt'})")

    for cycle in range(CYCLES + 1):
        last = cycle == CYCLES or time.monotonic() > deadline
        began = time.monotonic()
        fault = {} if cycle % ROLL_FAULT_EVERY != ROLL_FAULT_EVERY - 1 else {
            "NAKADI_FAULT": f"log.roll.created:{rng.randint(1, 3)}"}
        try:
            server = start(tmp_path, data, env={**env, **fault})
        except RuntimeError as e:
            raise AssertionError(f"restart refused after a simulated power loss {where(cycle)}: {e}") from e
        if cycle:
            report.recovery_ms.append((time.monotonic() - began) * 1000)
            report.recovery_removed_bytes += removed_bytes(sizes_cut, log_sizes(data))
        try:
            if cycle == 0:
                with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
                    for name in NAMES:
                        created = client.post("/event-types", json=event_type(name, PARTITIONS))
                        assert created.status_code == 201, created.text
            else:
                read = {f"{name}/{p}": events for name in NAMES for p, events in read_all(server.url, name).items()}
                checked = Report("power_loss cycle", seed)
                check(history, read, checked)
                checked.duplicates += info_repeats(history, read)
                bad = {name: value for name, value in checked.as_json().items()
                       if name in ("events_lost", "duplicates", "gaps", "order_violations") and value}
                if bad:
                    problems.append(f"{bad} {where(cycle)}")
            if last:
                break
            writers = Writers(server.url, NAMES, history, report, count=WRITERS, first_writer=cycle * WRITERS,
                              seed=rng.randrange(2**32)).start()
            time.sleep(rng.uniform(*KILL_AFTER_SECONDS))
            died_at_fault += server.process.poll() is not None
            server.kill()
            writers.stop()
            errors += writers.errors
            report.cycles += 1
            report.truncated_bytes += cut_back(data, trace_path, rng, logs / f"cuts-{cycle:04d}.txt")
            sizes_cut = log_sizes(data)
        finally:
            if server.process.poll() is None:
                status, _, _ = server.stop()
                if last and status != 0:
                    problems.append(f"the last server exited with {status} {where(cycle)}")
            keep_log(server, logs / f"cycle-{cycle:04d}.log")
            problems += [f"server log: {line.strip()} {where(cycle)}" for line in server.log_problems()]

    check(history, read, report)
    report.duplicates += info_repeats(history, read)
    print(f"{died_at_fault} cycles died in a segment roll; data {data}; server logs and cuts {logs}")
    report.finish()
    assert not errors, f"{errors[:3]} {where(report.cycles)}"
    assert not problems, "\n".join(problems[:10])
    assert report.events_acked > 0, f"nothing was acknowledged {where(report.cycles)}"


def cut_back(data: Path, trace_path: Path, rng: random.Random, journal: Path) -> int:
    """Put every file under `data/event-types` back to what a power cut
    could have left; write what was done to `journal`; the segment bytes
    cut off or zeroed."""
    trace = Trace.read(trace_path)
    lines, cut_bytes, deleted = [], 0, []
    for path in sorted(p for p in (data / "event-types").rglob("*") if p.is_file()):
        name, size = os.path.abspath(path), path.stat().st_size
        if path.suffix == ".index":
            action = cut_index(path, size, rng)
        else:
            synced = min(trace.synced.get(name, 0), size)
            if not trace.name_durable(name) and rng.random() < 0.75:
                action = "deleted" if rng.random() < 0.5 else "emptied"
                if action == "deleted":
                    path.unlink()
                    deleted.append(name)
                else:
                    os.truncate(path, 0)
                cut_bytes += size
            else:
                keep = rng.randint(synced, size)
                action = cut_tail(path, keep, size, zero_fill=rng.random() < 0.3)
                cut_bytes += size - keep
        lines.append(f"{name}\tsize {size}\tsynced {trace.synced.get(name)}\t{action}")
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text("\n".join(lines) + "\n")
    append_baseline(data, trace_path, deleted)
    return cut_bytes


def append_baseline(data: Path, trace_path: Path, deleted: list[str]) -> None:
    """After the cut the machine has "rebooted": what is on disk now is
    durable, names and lengths. Say so in the trace (the server is not
    running), so the next cut starts from here: forget the deleted files,
    then every file at its current length, then every directory synced."""
    files = sorted(p for p in data.rglob("*") if p.is_file())
    directories = sorted([data, *(p for p in data.rglob("*") if p.is_dir())])
    with trace_path.open("a") as out:
        out.writelines(f"{name}\t{DELETED}\n" for name in deleted)
        out.writelines(f"{os.path.abspath(p)}\t{p.stat().st_size}\n" for p in files)
        out.writelines(f"{os.path.abspath(p)}\t-1\n" for p in directories)


def cut_tail(path: Path, keep: int, size: int, *, zero_fill: bool) -> str:
    if keep == size:
        return "kept"
    if zero_fill:
        with path.open("r+b") as f:
            f.seek(keep)
            f.write(bytes(size - keep))
        return f"zeroed from {keep}"
    os.truncate(path, keep)
    return f"cut to {keep}"


def cut_index(path: Path, size: int, rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.3:
        return "kept"
    if choice < 0.55:
        path.unlink()
        return "deleted"
    return cut_tail(path, rng.randint(0, size), size, zero_fill=choice < 0.75)


def test_power_loss_keeps_event_type_directories(tmp_path):
    """Every directory the server creates has its entry made durable (its
    parent fsynced) before anything under it is acknowledged: otherwise a
    power cut could take it, with everything under it."""
    data, trace_path = tmp_path / "data", tmp_path / "sync-trace"
    env = {**ENV, "NAKADI_SYNC_TRACE": str(trace_path)}
    history, report = History(), Report("power_loss directories", 0)
    server = start(tmp_path, data, env=env)
    try:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            require(client.post("/event-types", json=event_type(NAMES[0], 1)).status_code == 201, "created")
            require(publish(client, NAMES[0], [event(0, n) for n in range(5)], history, report) == "ok", "acked")
    finally:
        server.kill()
    vanished = vanishing_directories(data, Trace.read(trace_path))
    assert not vanished, f"directories whose entry was never synced: {[str(d) for d in vanished]}"
    server = start(tmp_path, data, env=env)
    try:
        read = read_all(server.url, NAMES[0])
    finally:
        server.stop()
    check(history, read, report)
    assert not report.events_lost, f"{report.events_lost} of {report.events_acked} acknowledged events lost"


def vanishing_directories(data: Path, trace: Trace) -> list[Path]:
    """The topmost directories under `data` whose parent was never
    fsynced at all: their entries were never made durable."""
    vanished: list[Path] = []
    for path in sorted((p for p in data.rglob("*") if p.is_dir()), key=lambda p: len(p.parts)):
        if any(v in path.parents for v in vanished):
            continue
        if not trace.dir_syncs.get(os.path.abspath(path.parent)):
            vanished.append(path)
    return vanished


def test_power_loss_after_a_crash_mid_roll_keeps_acknowledged_events(tmp_path):
    """A crash mid-roll (the new segment exists, its directory entry not
    yet synced), then a plain restart: start-up makes the name durable
    before anything is acknowledged in that segment."""
    data, trace_path = tmp_path / "data", tmp_path / "sync-trace"
    env = {**ENV, "NAKADI_SYNC_TRACE": str(trace_path)}
    history, report = History(), Report("power_loss mid-roll", 0)
    server = start(tmp_path, data, env={**env, "NAKADI_FAULT": "log.roll.created:1"})
    try:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            require(client.post("/event-types", json=event_type(NAMES[0], 1)).status_code == 201, "created")
            for n in range(0, 1000, 10):
                if publish(client, NAMES[0], [event(0, n + i, 1000) for i in range(10)], history, report) == "info":
                    break
        require(server.process.wait(timeout=10) == -signal.SIGKILL, "the server died in a roll")
    finally:
        if server.process.poll() is None:
            server.kill()
        server.wait()
    server = start(tmp_path, data, env=env)
    try:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            for n in range(1000, 1025, 5):
                require(publish(client, NAMES[0], [event(0, n + i) for i in range(5)], history, report) == "ok",
                        "acked after the restart")
    finally:
        server.kill()
    trace = Trace.read(trace_path)
    vanished = [p for p in sorted((data / "event-types").rglob("*.log")) if not trace.name_durable(os.path.abspath(p))]
    assert not vanished, f"segments whose name was never synced: {[p.name for p in vanished]}"
    server = start(tmp_path, data, env=env)
    try:
        read = read_all(server.url, NAMES[0])
    finally:
        server.stop()
    check(history, read, report)
    assert not report.events_lost, f"{report.events_lost} of {report.events_acked} acknowledged events lost"


def require(condition: bool, what: str) -> None:
    """A precondition of a test: failing it is a setup failure (pytest.fail)."""
    if not condition:
        pytest.fail(f"precondition not met: {what}")
