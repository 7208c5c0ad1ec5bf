"""PartitionLogs reads: from the page cache in the event loop, else in a worker thread."""

import pytest

from broker.observer import TimedSyncIO
from broker.partition_logs import PartitionLogs
from storage import FileIO, LogConfig


class NothingCachedIO(FileIO):
    """A page cache that never holds what is asked for."""

    def __init__(self) -> None:
        self.refused = 0

    def pread_cached(self, fd: int, size: int, position: int) -> bytes:
        self.refused += 1
        raise BlockingIOError("not cached")


async def read_all(logs: PartitionLogs) -> list[bytes]:
    return [payload for run in await logs.read_runs("et", 0, 0, 10, 1 << 20) for payload in run.payloads]


class CountingIO(FileIO):
    """Counts the reads that may wait for the disk."""

    def __init__(self) -> None:
        self.preads = 0

    def pread(self, fd: int, size: int, position: int) -> bytes:
        self.preads += 1
        return super().pread(fd, size, position)


async def test_records_just_written_are_read_from_the_page_cache(tmp_path):
    io = CountingIO()
    logs = PartitionLogs(str(tmp_path), LogConfig(), "refuse", io=io)
    logs.open_all({})
    await logs.create("et", 1)
    assert await logs.append("et", {0: [b'{"a":1}', b'{"a":2}']}) == {}
    before = io.preads
    assert await read_all(logs) == [b'{"a":1}', b'{"a":2}']
    # Where the file system cannot tell what is cached (tmpfs), a worker thread reads.
    assert io.preads == before or not io.reads_without_wait
    logs.close_all()


@pytest.mark.parametrize("timed", [False, True], ids=["plain", "through the broker's timing IO"])
async def test_records_the_page_cache_cannot_serve_are_read_in_a_worker_thread(tmp_path, timed):
    io = NothingCachedIO()
    logs = PartitionLogs(str(tmp_path), LogConfig(), "refuse", io=TimedSyncIO(io) if timed else io)
    logs.open_all({})
    await logs.create("et", 1)
    assert await logs.append("et", {0: [b'{"a":1}', b'{"a":2}']}) == {}
    assert await read_all(logs) == [b'{"a":1}', b'{"a":2}']
    assert io.refused == 1
    logs.close_all()
