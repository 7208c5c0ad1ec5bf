"""The child process of `test_crash.py`: appends to one PartitionLog from
several threads with durability "always" until it is killed.

    python crash_writer.py DIRECTORY CYCLE THREADS SEED

Prints `ready <end_offset>` once the log is open (recovery done), then one
line `ack <writer> <seq> <count> <first_offset>` after each append returns:
records `payload(CYCLE, writer, seq + i)` for i < count are acknowledged at
offsets `first_offset + i`. Only a printed line counts as acknowledged, so
each is written with a single `os.write` under a lock (a pipe write below
PIPE_BUF is atomic and never interleaved).
"""

from __future__ import annotations

import os
import random
import re
import sys
import threading
import time
import zlib

from storage import LogConfig, PartitionLog

CONFIG = LogConfig(segment_bytes_max=64 * 1024, frame_bytes_max=64 * 1024, index_interval_bytes=1024,
                   durability="always")
APPENDS_MAX = 100_000
RUN_SECONDS_MAX = 10.0
_PAYLOAD = re.compile(rb"^c(\d+)w(\d+)n(\d+):")


def payload(cycle: int, writer: int, seq: int) -> bytes:
    """A self-describing payload of 24-220 bytes; the filler depends on the key."""
    head = b"c%dw%dn%d:" % (cycle, writer, seq)
    return head + (b"%08x" % zlib.crc32(head)) * (2 + (cycle * 31 + writer * 7 + seq) % 25)


def parse_payload(data: bytes) -> tuple[int, int, int] | None:
    """The (cycle, writer, seq) a payload names, or None if it names none."""
    match = _PAYLOAD.match(data)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def main(argv: list[str]) -> None:
    directory, cycle, threads, seed = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    log = PartitionLog.open(directory, CONFIG)
    lock = threading.Lock()

    def say(line: str) -> None:
        data = line.encode()
        with lock:
            assert os.write(1, data) == len(data)

    say(f"ready {log.end_offset}\n")
    deadline = time.monotonic() + RUN_SECONDS_MAX

    def write(writer: int) -> None:
        rng = random.Random(seed * 1000 + writer)
        seq = 0
        for _ in range(APPENDS_MAX):
            if time.monotonic() > deadline:
                return
            count = rng.randint(1, 20)
            appended = log.append([payload(cycle, writer, seq + i) for i in range(count)])
            say(f"ack {writer} {seq} {count} {appended.first_offset}\n")
            seq += count

    workers = [threading.Thread(target=write, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    log.close()
    say("done\n")


if __name__ == "__main__":
    main(sys.argv)
