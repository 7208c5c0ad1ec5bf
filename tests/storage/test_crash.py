"""Crash tests: a real process appending with fsync is killed with SIGKILL
over and over (RELIABILITY.md section 1a, at the storage layer).

The log directory persists across cycles, so each recovery runs over a
longer, multi-segment log. After every kill the log is reopened (recovery
must never refuse) and checked against what the child printed as
acknowledged: every acknowledged record present at its offset and
byte-identical (I1), each writer's order kept (I2), no payload twice (I3),
offsets dense (I4). Records that were written but not yet printed when the
kill came are indeterminate: allowed, at most once.

`kill -9` leaves the page cache to the kernel, so this cannot show a
missing fsync; it shows torn or half-rolled state and recovery over it.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from storage import CorruptLogError, PartitionLog

from .crash_writer import CONFIG, parse_payload, payload

REPO = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("crash_writer.py")
LONG = os.environ.get("RELIABILITY_LONG") == "1"
CYCLES_MAX = 500 if LONG else 15
SECONDS_MAX = 600.0 if LONG else 20.0
KILL_AFTER_S = (0.05, 0.3)
READY_TIMEOUT_S = 15.0


@dataclass
class Tally:
    cycles: int = 0
    acked: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # offset -> (cycle, writer, seq)
    lost: set[int] = field(default_factory=set)
    duplicates: int = 0
    gaps: int = 0
    order_violations: int = 0
    corrupt: int = 0
    failed_restarts: int = 0
    info_present: int = 0
    truncated_bytes: list[int] = field(default_factory=list)
    recovery_ms: list[float] = field(default_factory=list)
    segments: int = 0

    def line(self, seed: int, seconds: float) -> str:
        ms = self.recovery_ms or [0.0]
        return (f"crash: seed={seed} cycles={self.cycles} acked={len(self.acked)} lost={len(self.lost)} "
                f"duplicates={self.duplicates} gaps={self.gaps} order={self.order_violations} "
                f"corrupt={self.corrupt} failed_restarts={self.failed_restarts} info_present={self.info_present} "
                f"truncated_bytes={sum(self.truncated_bytes)} (cycles with a cut: "
                f"{sum(1 for b in self.truncated_bytes if b)}) segments={self.segments} "
                f"recovery_ms_p50={statistics.median(ms):.1f} recovery_ms_max={max(ms):.1f} duration_s={seconds:.1f}")


def run_and_kill(directory: Path, cycle: int, threads: int, seed: int, kill_after_s: float,
                 stderr_path: Path) -> list[str]:
    """Run the writer, SIGKILL it `kill_after_s` after it is ready, return its complete lines."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    lines: queue.Queue[str | None] = queue.Queue()
    with open(stderr_path, "wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-W", "error", str(WRITER), str(directory), str(cycle), str(threads), str(seed)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr)

    def drain() -> None:
        for raw in child.stdout:
            if raw.endswith(b"\n"):
                lines.put(raw.decode())
        lines.put(None)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out: list[str] = []
    try:
        first = lines.get(timeout=READY_TIMEOUT_S)
        assert first is not None and first.startswith("ready "), (first, stderr_path.read_text())
        out.append(first)
        time.sleep(kill_after_s)
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        reader.join(timeout=10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL, (child.returncode, stderr_path.read_text())
    while (line := lines.get_nowait()) is not None:
        out.append(line)
    return out


def read_all(log: PartitionLog) -> list:
    records: list = []
    offset = log.start_offset
    for _ in range(1_000_000):
        if offset >= log.end_offset:
            break
        chunk = log.read(offset, 5000, 4 * 1024 * 1024)
        assert chunk, f"read at {offset} below the end {log.end_offset} returned nothing"
        records += chunk
        offset = chunk[-1].offset + 1
    return records


def check(log: PartitionLog, tally: Tally, cycle: int, acked_now: set[tuple[int, int, int]]) -> None:
    records = read_all(log)
    start = log.start_offset
    for i, record in enumerate(records):
        if record.offset != start + i:
            tally.gaps += 1
    if records and records[-1].offset + 1 != log.end_offset:
        tally.gaps += 1
    seen: set[tuple[int, int, int]] = set()
    last_seq: dict[tuple[int, int], int] = {}
    for record in records:
        key = parse_payload(record.payload)
        if key is None or record.payload != payload(*key):
            tally.corrupt += 1
            continue
        if key in seen:
            tally.duplicates += 1
        seen.add(key)
        writer = key[:2]
        if last_seq.get(writer, -1) >= key[2]:
            tally.order_violations += 1
        last_seq[writer] = key[2]
    by_offset = {r.offset: r.payload for r in records}
    for offset, key in tally.acked.items():
        if by_offset.get(offset) != payload(*key):
            tally.lost.add(offset)
    tally.info_present += sum(1 for key in seen if key[0] == cycle and key not in acked_now)


@pytest.mark.slow
def test_partitionlog_sigkill_during_fsynced_appends_loses_no_acknowledged_record(tmp_path):
    seed = int(os.environ.get("NAKADI_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"crash: seed={seed} (set NAKADI_CRASH_SEED to repeat)")
    rng = random.Random(seed)
    directory = tmp_path / "p"
    tally = Tally()
    started = time.monotonic()
    for cycle in range(CYCLES_MAX):
        if time.monotonic() - started > SECONDS_MAX:
            break
        lines = run_and_kill(directory, cycle, threads=rng.randint(2, 4), seed=rng.randrange(2**31),
                             kill_after_s=rng.uniform(*KILL_AFTER_S), stderr_path=tmp_path / f"writer{cycle}.err")
        tally.cycles += 1
        acked_now: set[tuple[int, int, int]] = set()
        for line in lines[1:]:
            tag, writer, seq, count, first = line.split()
            assert tag == "ack", line
            for i in range(int(count)):
                key, offset = (cycle, int(writer), int(seq) + i), int(first) + i
                if offset in tally.acked:
                    tally.lost.add(offset)  # an acknowledged offset was handed out again
                else:
                    tally.acked[offset] = key
                acked_now.add(key)

        began = time.perf_counter()
        try:
            log = PartitionLog.open(directory, CONFIG)
        except CorruptLogError as e:
            tally.failed_restarts += 1
            pytest.fail(f"recovery refused after cycle {cycle}: {e}\n{tally.line(seed, time.monotonic() - started)}")
        tally.recovery_ms.append((time.perf_counter() - began) * 1000)
        try:
            tally.truncated_bytes.append(log.recovery.truncated_bytes)
            assert not log.recovery.actions("truncated_damage"), log.recovery.events
            check(log, tally, cycle, acked_now)
            tally.segments = log.statistics().segment_count
        finally:
            log.close()

    line = tally.line(seed, time.monotonic() - started)
    print(line)
    assert tally.cycles >= 3, line
    assert len(tally.acked) > 0 and tally.segments > 1, line
    assert (len(tally.lost), tally.duplicates, tally.gaps, tally.order_violations, tally.corrupt,
            tally.failed_restarts) == (0, 0, 0, 0, 0, 0), line
