"""Start-up benchmark: how long `nakadi serve` takes to accept connections
over a data directory holding `--gib` GiB of events (1 by default).

What it measures: from starting the process to its ready file naming the
URL (imports, the metadata store, every partition log opened, the active
segments' recovery scan, Hypercorn bound), several rounds, median with min
and max; with the page cache warm, and, when this process may drop the
page cache (root on Linux), cold as well. Beside it, in the same run: the
same process over an empty data directory (what imports and binding cost),
and a plain read + CRC32C pass over every byte of the data (what reading
it all would cost).

How: an event type of 4 partitions is created through the server; then
its partitions are filled directly through `storage.PartitionLog`
(frames of 1000 enriched-looking events of about 330 bytes, 128 MiB
segments, durability `never` for speed, one sync at the end), and the
server is started on them round after round.

Bar (issue 9): start-up over 1 GiB under 2 s (warm). A failed bar prints
FAIL; the exit status stays 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import crc32c
import orjson
from measure import record, spread
from publish_bench import (
    Cpus,
    create_event_type,
    order_event,
    print_machine,
    running,
    start_ours,
    work_directory,
)

from storage import LogConfig, PartitionLog

EVENT_TYPE = "bench.startup"
PARTITIONS = 4
FRAME_EVENTS = 1000
BAR_SECONDS = 2.0
READ_CHUNK = 8 * 1024 * 1024
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def fill(data_dir: Path, total_bytes: int) -> tuple[int, int]:
    """Write about `total_bytes` of events into the event type's partitions; (events, bytes)."""
    import random
    rng = random.Random(7)
    payloads = [orjson.dumps({**order_event(rng, i), "metadata": {
        **order_event(rng, i)["metadata"], "received_at": "2026-11-27T10:00:00.000Z", "event_type": EVENT_TYPE,
        "flow_id": "0123456789abcdef01234567", "partition": "0", "version": "1.0.0",
        "published_by": "unauthenticated"}}) for i in range(FRAME_EVENTS)]
    frame_bytes = sum(map(len, payloads))
    logs = [PartitionLog.open(data_dir / "event-types" / EVENT_TYPE / str(p), LogConfig(durability="never"))
            for p in range(PARTITIONS)]
    written = events = 0
    try:
        while written < total_bytes:
            log = logs[(events // FRAME_EVENTS) % PARTITIONS]
            log.append(payloads)
            written += frame_bytes
            events += FRAME_EVENTS
        for log in logs:
            log.sync()
    finally:
        for log in logs:
            log.close()
    return events, written


def crc_pass(data_dir: Path) -> float:
    """Seconds to read every segment file and CRC32C it."""
    started = time.perf_counter()
    for path in sorted((data_dir / "event-types").rglob("*.log")):
        with open(path, "rb") as file:
            crc = 0
            while chunk := file.read(READ_CHUNK):
                crc = crc32c.crc32c(chunk, crc)
    return time.perf_counter() - started


def drop_caches() -> bool:
    """Empty the page cache (needs root); whether it could."""
    try:
        os.sync()
        DROP_CACHES.write_text("3\n")
        return True
    except OSError:
        return False


def start_seconds(root: Path, data_dir: Path, cpus: Cpus) -> float:
    started = time.perf_counter()
    server = start_ours(root, cpus, data_dir)
    seconds = time.perf_counter() - started
    server.stop()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0, help="GiB of events to start over (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="start-ups per figure")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 32 MiB, one round")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server to a CPU")
    args = parser.parse_args(argv)
    total = int(32 * 2**20 if args.quick else args.gib * 2**30)
    rounds = 1 if args.quick else max(1, args.rounds)
    cpus = Cpus.choose(not args.no_pin)
    print_machine(cpus, f"{total / 2**30:.2f} GiB, {rounds} round(s)")
    with work_directory() as root:
        empty_dir, data_dir = root / "empty", root / "data"
        server = start_ours(root, cpus, data_dir)
        with running(server):
            create_event_type(server, EVENT_TYPE, PARTITIONS)
        started = time.perf_counter()
        events, written = fill(data_dir, total)
        print(f"data: {events:,} events, {written / 2**30:.2f} GiB of payloads in {PARTITIONS} partitions, "
              f"written in {time.perf_counter() - started:.1f} s", flush=True)
        empty = [start_seconds(root, empty_dir, cpus) for _ in range(rounds)]
        warm = [start_seconds(root, data_dir, cpus) for _ in range(rounds)]
        crc = [crc_pass(data_dir) for _ in range(rounds)]
        cold = []
        for _ in range(rounds):
            if not drop_caches():
                break
            cold.append(start_seconds(root, data_dir, cpus))
    verdict = "PASS" if statistics.median(warm) < BAR_SECONDS else "FAIL <<<<<<<<"
    print(f"\n{'measurement':<44} {'seconds med (min-max)':>28}")
    print("-" * 74)
    print(f"{'start-up, empty data directory':<44} {spread(empty, '.3f'):>28}")
    print(f"{f'start-up over {written / 2**30:.2f} GiB, warm cache':<44} {spread(warm, '.3f'):>28}  "
          f"< {BAR_SECONDS:g} s {verdict}")
    if cold:
        print(f"{f'start-up over {written / 2**30:.2f} GiB, cold cache':<44} {spread(cold, '.3f'):>28}")
    else:
        print("start-up with a cold cache: not measured (dropping the page cache needs root)")
    print(f"{'read + CRC32C of every segment, warm':<44} {spread(crc, '.3f'):>28}  (reference)")
    gib = f"{written / 2**30:.2f} GiB"
    record(f"start-up over {gib}, warm cache", f"{spread(warm, '.3f')} s",
           f"{spread(empty, '.3f')} s (empty data directory); {spread(crc, '.3f')} s (read + CRC32C of {gib})", "",
           f"< {BAR_SECONDS:g} s {verdict}")
    if cold:
        record(f"start-up over {gib}, cold cache", f"{spread(cold, '.3f')} s", "", "", "no bar")
    print(f"\nbars: {1 if verdict == 'PASS' else 0} of 1 PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
