"""Group commit across tasks: concurrent appends share a round (one
fdatasync per log); each learns its own outcome."""

import threading

import pytest
import trio
import trio.testing

from broker.group_commit import GroupCommit
from storage import Appended, BatchTooLargeError, FileIO, LogConfig, PartitionLog

CONFIG = LogConfig(frame_bytes_max=4096, durability="always")


class GatedSyncIO(FileIO):
    """Once armed, the next fdatasync blocks until `release()`."""

    def __init__(self) -> None:
        self.armed = False
        self.entered = threading.Event()
        self._release = threading.Event()

    def release(self) -> None:
        self._release.set()

    def fdatasync(self, fd: int) -> None:
        if self.armed:
            self.armed = False
            self.entered.set()
            assert self._release.wait(10)
        super().fdatasync(fd)


@pytest.fixture
def log(tmp_path):
    log = PartitionLog.open(tmp_path / "p0", CONFIG)
    yield log
    log.close()


def payloads(task: int, count: int = 3) -> list[bytes]:
    return [f"task {task} record {i}".encode() for i in range(count)]


async def test_concurrent_appends_share_one_fdatasync_and_get_dense_offsets(log):
    committer = GroupCommit()
    syncs_before = log.statistics().syncs
    outcomes: dict[int, Appended] = {}

    async def append(task: int) -> None:
        [outcomes[task]] = await committer.append([(log, payloads(task))])

    async with trio.open_nursery() as nursery:
        for task in range(20):
            nursery.start_soon(append, task)
    assert log.statistics().syncs == syncs_before + 1
    assert sorted((a.first_offset, a.end_offset) for a in outcomes.values()) == [(3 * i, 3 * i + 3) for i in range(20)]
    for task, appended in outcomes.items():
        assert [r.payload for r in log.read(appended.first_offset, 3)] == payloads(task)


async def test_a_failing_batch_fails_only_its_own_append(log):
    committer = GroupCommit()
    outcomes: dict[int, object] = {}

    async def append(task: int, batch: list[bytes]) -> None:
        [outcomes[task]] = await committer.append([(log, batch)])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(append, 0, payloads(0))
        nursery.start_soon(append, 1, [b"x" * 8192])
        nursery.start_soon(append, 2, payloads(2))
    assert isinstance(outcomes[1], BatchTooLargeError)
    assert sorted((outcomes[t].first_offset, outcomes[t].end_offset) for t in (0, 2)) == [(0, 3), (3, 6)]
    assert log.end_offset == 6


async def test_appends_arriving_during_a_round_are_written_by_the_next_one(tmp_path):
    io = GatedSyncIO()
    log = PartitionLog.open(tmp_path / "p0", CONFIG, io=io)
    committer = GroupCommit()
    syncs_before = log.statistics().syncs
    io.armed = True
    outcomes: dict[int, Appended] = {}

    async def append(task: int) -> None:
        [outcomes[task]] = await committer.append([(log, payloads(task))])

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(append, 0)
            await trio.to_thread.run_sync(io.entered.wait, 10)
            for task in (1, 2, 3):
                nursery.start_soon(append, task)
            await trio.testing.wait_all_tasks_blocked()
            assert outcomes == {}
            io.release()
        assert log.statistics().syncs == syncs_before + 2
        assert outcomes[0].first_offset == 0
        assert sorted(outcomes[t].first_offset for t in (1, 2, 3)) == [3, 6, 9]
    finally:
        io.release()
        log.close()


async def test_a_cancelled_caller_still_gets_its_append_written(log):
    committer = GroupCommit()
    with trio.CancelScope() as scope:
        scope.cancel()
        [appended] = await committer.append([(log, payloads(0))])
    assert appended.end_offset == 3
    assert [r.payload for r in log.read(0, 3)] == payloads(0)


async def test_appends_to_several_logs_share_a_round_with_one_fdatasync_per_log(tmp_path):
    logs = [PartitionLog.open(tmp_path / f"p{p}", CONFIG) for p in range(3)]
    committer = GroupCommit()
    outcomes: dict[int, list] = {}

    async def append(task: int) -> None:
        # Every task writes to every log, the last one twice.
        outcomes[task] = await committer.append([(log, payloads(task)) for log in logs] + [(logs[2], payloads(-task))])

    try:
        async with trio.open_nursery() as nursery:
            for task in range(10):
                nursery.start_soon(append, task)
        assert [log.statistics().syncs for log in logs] == [1, 1, 1]
        assert [log.end_offset for log in logs] == [30, 30, 60]
        for task, [a0, a1, a2, again] in outcomes.items():
            assert [r.payload for r in logs[0].read(a0.first_offset, 3)] == payloads(task)
            assert [r.payload for r in logs[1].read(a1.first_offset, 3)] == payloads(task)
            assert [r.payload for r in logs[2].read(a2.first_offset, 3)] == payloads(task)
            assert again.first_offset == a2.end_offset
            assert [r.payload for r in logs[2].read(again.first_offset, 3)] == payloads(-task)
    finally:
        for log in logs:
            log.close()


async def test_a_failing_log_fails_only_its_own_appends(tmp_path):
    logs = [PartitionLog.open(tmp_path / f"p{p}", CONFIG) for p in range(2)]
    logs[1].close()
    committer = GroupCommit()
    try:
        first, second = await committer.append([(logs[0], payloads(0)), (logs[1], payloads(0))])
        assert first.end_offset == 3 and isinstance(second, Exception)
    finally:
        logs[0].close()


async def test_frames_the_event_loop_may_not_write_are_written_in_order_by_the_worker(tmp_path):
    """A segment roll is left to the worker thread, and every frame after it
    in the round with it: the log keeps the order of the appends."""
    log = PartitionLog.open(tmp_path / "p0", LogConfig(segment_bytes_max=1024, frame_bytes_max=1024))
    committer = GroupCommit()
    batches = [[f"task {task} ".encode() * 30] for task in range(8)]  # 240 bytes: a roll every few frames
    outcomes: dict[int, Appended] = {}

    async def append(task: int) -> None:
        [outcomes[task]] = await committer.append([(log, batches[task])])

    async with trio.open_nursery() as nursery:
        for task in range(8):
            nursery.start_soon(append, task)
    assert log.statistics().segment_count > 1
    by_offset = sorted(outcomes, key=lambda task: outcomes[task].first_offset)
    assert [outcomes[task].first_offset for task in by_offset] == list(range(8))
    assert [r.payload for r in log.read(0, 100)] == [batches[task][0] for task in by_offset]
    log.close()
