"""PartitionLog behaviour: appends, reads, roll, retention, time lookup,
durability policies, group commit, close, reopen and delete."""

import contextlib
import os
import threading

import pytest

from storage import (
    BatchTooLargeError,
    FileIO,
    LogClosedError,
    LogConfig,
    OffsetOutOfRangeError,
    PartitionLog,
)
from storage.segment import PREALLOCATE_BYTES


class FakeClock:
    def __init__(self, ms=1_000_000):
        self.ms = ms

    def __call__(self):
        return self.ms


def payloads(n, start=0, size=10):
    return [f"{i:0{size}d}".encode() for i in range(start, start + n)]


def all_payloads(log):
    out, offset = [], log.start_offset
    while offset < log.end_offset:
        records = log.read(offset, 100)
        out += [r.payload for r in records]
        offset = records[-1].offset + 1
    return out


def test_log_append_returns_dense_offsets_and_reads_them_back(tmp_path):
    log = PartitionLog.open(tmp_path / "p")
    first = log.append(payloads(3))
    second = log.append(payloads(2, 3))
    assert (first.first_offset, first.end_offset, second.first_offset, second.end_offset) == (0, 3, 3, 5)
    assert [r.offset for r in log.read(0)] == [0, 1, 2, 3, 4]
    assert [r.payload for r in log.read(2, max_records=2)] == payloads(2, 2)
    assert log.read(5) == []
    log.close()


def test_log_read_honours_byte_bound_but_returns_at_least_one(tmp_path):
    log = PartitionLog.open(tmp_path / "p")
    log.append([b"a" * 100, b"b" * 100, b"c" * 100])
    assert len(log.read(0, max_bytes=250)) == 2
    assert len(log.read(0, max_bytes=10)) == 1
    assert len(log.read(0, max_bytes=300)) == 3
    log.close()


def test_log_read_outside_retained_range_raises(tmp_path):
    log = PartitionLog.open(tmp_path / "p")
    log.append([b"x"])
    with pytest.raises(OffsetOutOfRangeError):
        log.read(2)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1)
    log.close()


def test_log_rolls_by_size_and_reads_across_segments(tmp_path):
    log = PartitionLog.open(tmp_path / "p", LogConfig(segment_bytes_max=1024, frame_bytes_max=1024))
    for i in range(40):
        log.append(payloads(5, i * 5, size=20))
    assert log.statistics().segment_count > 5
    assert all_payloads(log) == payloads(200, size=20)
    assert [r.offset for r in log.read(0, max_records=200)] == list(range(200))
    names = sorted(os.listdir(tmp_path / "p"))
    assert names[0] == "00000000000000000000.index" and all(len(n.split(".")[0]) == 20 for n in names)
    log.close()


def test_log_preallocates_the_active_segment_without_changing_its_size(tmp_path):
    log = PartitionLog.open(tmp_path / "p", LogConfig())
    log.append(payloads(5))
    [active] = [n for n in os.listdir(tmp_path / "p") if n.endswith(".log")]
    stat = os.stat(tmp_path / "p" / active)
    assert stat.st_size == log.statistics().size_bytes
    assert stat.st_blocks * 512 >= PREALLOCATE_BYTES
    log.close()
    reopened = PartitionLog.open(tmp_path / "p", LogConfig())
    assert all_payloads(reopened) == payloads(5) and reopened.recovery.events == []
    reopened.close()


def test_log_segments_rolled_for_size_keep_less_than_a_frame_allocated_past_their_end(tmp_path):
    log = PartitionLog.open(tmp_path / "p", LogConfig(segment_bytes_max=64 * 1024, frame_bytes_max=4096))
    for i in range(100):
        log.append(payloads(20, i * 20, size=100))
    sealed = sorted(n for n in os.listdir(tmp_path / "p") if n.endswith(".log"))[:-1]
    assert len(sealed) > 2
    for name in sealed:
        stat = os.stat(tmp_path / "p" / name)
        assert stat.st_blocks * 512 <= 64 * 1024 + 4096 + 4096, name
    log.close()


def test_log_writes_where_preallocation_is_not_supported(tmp_path):
    class NoFallocate(FileIO):
        def preallocate(self, fd, position, length):
            raise OSError(95, "Operation not supported")
    log = PartitionLog.open(tmp_path / "p", LogConfig(), io=NoFallocate())
    log.append(payloads(5))
    assert all_payloads(log) == payloads(5)
    log.close()


def test_log_rolls_by_age(tmp_path):
    clock = FakeClock()
    log = PartitionLog.open(tmp_path / "p", LogConfig(segment_age_ms_max=1000), clock=clock)
    log.append([b"a"])
    clock.ms += 999
    log.append([b"b"])
    assert log.statistics().segment_count == 1
    clock.ms += 1
    log.append([b"c"])
    assert log.statistics().segment_count == 2
    log.close()


def test_log_rolls_when_the_index_is_full(tmp_path):
    log = PartitionLog.open(tmp_path / "p", LogConfig(index_interval_bytes=1, index_bytes_max=8 * 4))
    for i in range(9):
        log.append([b"x"])
    assert log.statistics().segment_count == 3
    log.close()


def test_log_batch_larger_than_a_frame_is_refused_and_nothing_written(tmp_path):
    log = PartitionLog.open(tmp_path / "p", LogConfig(frame_bytes_max=1024, segment_bytes_max=4096))
    with pytest.raises(BatchTooLargeError):
        log.append([b"x" * 2000])
    assert log.end_offset == 0
    assert log.append([b"ok"]).first_offset == 0
    log.close()


def test_log_retention_by_size_deletes_whole_oldest_segments(tmp_path):
    log = PartitionLog.open(tmp_path / "p", LogConfig(segment_bytes_max=2048, frame_bytes_max=2048))
    for i in range(50):
        log.append(payloads(4, i * 4, size=50))
    before = log.statistics()
    deleted = log.enforce_retention(retention_bytes=before.size_bytes // 2)
    after = log.statistics()
    assert deleted > 0 and after.size_bytes <= before.size_bytes // 2
    assert after.segment_count == before.segment_count - deleted
    assert log.start_offset > 0 and log.end_offset == 200
    assert all_payloads(log) == payloads(200 - log.start_offset, log.start_offset, size=50)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0)
    log.close()
    reopened = PartitionLog.open(tmp_path / "p")
    assert (reopened.start_offset, reopened.end_offset) == (after.start_offset, 200)
    reopened.close()


def test_log_retention_by_time_moves_start_offset_including_the_active_segment(tmp_path):
    clock = FakeClock()
    log = PartitionLog.open(tmp_path / "p", LogConfig(segment_bytes_max=1024, frame_bytes_max=1024), clock=clock)
    for i in range(10):
        log.append(payloads(5, i * 5, size=30))
    clock.ms += 10_000
    log.roll()
    log.append([b"new"])
    assert log.enforce_retention(retention_ms=5_000) > 0
    assert log.start_offset == 50 and all_payloads(log) == [b"new"]
    clock.ms += 10_000
    log.enforce_retention(retention_ms=5_000)
    assert log.start_offset == log.end_offset == 51
    assert log.append([b"after"]).first_offset == 51
    log.close()


def test_log_offset_at_or_after_finds_first_record_received_then(tmp_path):
    clock = FakeClock(1000)
    log = PartitionLog.open(tmp_path / "p", LogConfig(segment_bytes_max=1024, frame_bytes_max=1024,
                                                       index_interval_bytes=64), clock=clock)
    times = {}
    for i in range(60):
        clock.ms = 1000 + i * 10
        times[log.append(payloads(3, i * 3, size=20)).first_offset] = clock.ms
    assert log.statistics().segment_count > 3
    for offset, ms in times.items():
        assert log.offset_at_or_after(ms) == offset
        assert log.offset_at_or_after(ms - 5) == offset
    assert log.offset_at_or_after(0) == 0
    assert log.offset_at_or_after(10**15) == log.end_offset
    log.close()


def test_log_received_time_never_goes_backwards(tmp_path):
    clock = FakeClock(5000)
    log = PartitionLog.open(tmp_path / "p", clock=clock)
    log.append([b"a"])
    clock.ms = 4000
    log.append([b"b"])
    assert [r.received_ms for r in log.read(0)] == [5000, 5000]
    log.close()


def test_log_always_hides_written_records_until_synced(tmp_path):
    log = PartitionLog.open(tmp_path / "p")
    appended = log.write([b"a", b"b"])
    assert log.end_offset == 0 and log.read(0) == []
    log.sync(appended)
    assert log.end_offset == 2 and len(log.read(0)) == 2
    log.close()


@pytest.mark.parametrize("policy", ["interval", "never"])
def test_log_relaxed_policies_acknowledge_without_fsync(tmp_path, policy):
    clock = FakeClock()
    log = PartitionLog.open(tmp_path / "p", LogConfig(durability=policy, sync_interval_ms=100), clock=clock)
    for _ in range(5):
        log.append([b"x"])
    assert log.end_offset == 5 and log.statistics().syncs == 0
    clock.ms += 100
    log.append([b"y"])
    assert log.statistics().syncs == (1 if policy == "interval" else 0)
    log.close()


def test_log_group_commit_shares_fsyncs_between_concurrent_appenders(tmp_path):
    log = PartitionLog.open(tmp_path / "p")
    count, threads = 50, 8
    barrier = threading.Barrier(threads)
    acknowledged = []

    def appender(w):
        barrier.wait()
        for n in range(count):
            a = log.append([f"{w}:{n}".encode()])
            acknowledged.append((a.first_offset, f"{w}:{n}".encode()))

    workers = [threading.Thread(target=appender, args=(w,)) for w in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    stats = log.statistics()
    assert stats.end_offset == stats.durable_end_offset == count * threads
    assert stats.syncs < count * threads
    records = {r.offset: r.payload for r in log.read(0, max_records=count * threads)}
    assert all(records[offset] == payload for offset, payload in acknowledged)
    for w in range(threads):
        mine = [int(p.split(b":")[1]) for o, p in sorted(records.items()) if p.startswith(f"{w}:".encode())]
        assert mine == list(range(count))
    log.close()


def test_log_close_reopen_keeps_everything_and_delete_removes_the_directory(tmp_path):
    log = PartitionLog.open(tmp_path / "p", LogConfig(durability="never", segment_bytes_max=1024, frame_bytes_max=1024))
    for i in range(30):
        log.append(payloads(3, i * 3, size=25))
    log.close()
    log.close()
    with pytest.raises(LogClosedError):
        log.append([b"x"])
    with pytest.raises(LogClosedError):
        log.read(0)
    reopened = PartitionLog.open(tmp_path / "p")
    assert reopened.recovery.events == [] and all_payloads(reopened) == payloads(90, size=25)
    reopened.delete()
    assert not (tmp_path / "p").exists()


def test_log_config_rejects_nonsense():
    with pytest.raises(ValueError, match="durability"):
        LogConfig(durability="sometimes")
    with pytest.raises(ValueError, match="segment_bytes_max"):
        LogConfig(segment_bytes_max=2**40)
    with pytest.raises(ValueError, match="sync_interval_ms"):
        LogConfig(sync_interval_ms=0)


@contextlib.contextmanager
def held_by_another_thread(log):
    """The log's lock, held by another thread for the `with` block."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with log._lock:
            holding.set()
            release.wait(10)
    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join()


def test_write_now_writes_as_write_does_when_that_costs_only_the_write(tmp_path):
    log = PartitionLog.open(tmp_path / "p", LogConfig(segment_bytes_max=1024, frame_bytes_max=1024))
    first = log.write_now(payloads(3))
    assert (first.first_offset, first.end_offset) == (0, 3)
    assert log.read(0) == []  # under `always`, invisible until synced
    assert log.acknowledge_batches([first]) == [first]
    assert all_payloads(log) == payloads(3)
    log.close()


def test_write_now_leaves_a_roll_and_a_held_log_to_the_caller(tmp_path):
    log = PartitionLog.open(tmp_path / "p", LogConfig(segment_bytes_max=1024, frame_bytes_max=1024))
    log.append(payloads(1, size=600))
    assert log.write_now(payloads(1, size=600)) is None  # the segment would roll
    with held_by_another_thread(log):
        assert log.write_now(payloads(1)) is None
    assert log.end_offset == 1 and log.statistics().segment_count == 1
    written = [log.write(payloads(1, 1, size=600)), log.write_now(payloads(1, 2))]
    assert all(w is not None for w in written)
    assert log.acknowledge_batches(written) == written
    assert all_payloads(log) == [*payloads(1, size=600), *payloads(1, 1, size=600), *payloads(1, 2)]
    log.close()


class NothingCachedIO(FileIO):
    """A page cache that never holds what is asked for."""

    def pread_cached(self, fd: int, size: int, position: int) -> bytes:
        raise BlockingIOError("not cached")


def test_cached_only_reads_what_was_just_written_and_refuses_to_wait(tmp_path):
    log = PartitionLog.open(tmp_path / "p", LogConfig())
    log.append(payloads(5))
    if page_cache_readable(tmp_path):
        assert [r.payloads for r in log.read_runs(1, cached_only=True)] == [payloads(4, 1)]
    with held_by_another_thread(log), pytest.raises(BlockingIOError):
        log.read_runs(0, cached_only=True)
    log.close()
    uncached = PartitionLog.open(tmp_path / "p", LogConfig(), io=NothingCachedIO())
    with pytest.raises(BlockingIOError):
        uncached.read_runs(0, cached_only=True)
    assert [r.payload for r in uncached.read(0)] == payloads(5)
    uncached.close()


def page_cache_readable(directory) -> bool:
    """Whether `FileIO.pread_cached` works on `directory`'s file system
    (tmpfs, for one, cannot tell what the page cache holds)."""
    path = directory / "probe"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDONLY)
    io = FileIO()
    try:
        assert io.pread_cached(fd, 4, 3) == b"3456"
        with pytest.raises(BlockingIOError):
            io.pread_cached(fd, 20, 0)  # beyond the end: not all of it is there
        return True
    except BlockingIOError:
        assert not io.reads_without_wait
        return False
    finally:
        os.close(fd)


def test_pread_cached_reads_cached_bytes_and_refuses_a_range_past_them(tmp_path):
    if not page_cache_readable(tmp_path):
        pytest.skip("this file system cannot tell what the page cache holds")


def test_cached_only_leaves_a_large_read_to_a_worker_thread(tmp_path):
    log = PartitionLog.open(tmp_path / "p", LogConfig(durability="never"))
    for i in range(40):
        log.write(payloads(10, 10 * i, size=300))  # 120 KB in all
    if page_cache_readable(tmp_path):
        assert [r.payloads for r in log.read_runs(0, 10, 3000, cached_only=True)] == [payloads(10, size=300)]
    with pytest.raises(BlockingIOError):
        log.read_runs(0, 400, 1 << 20, cached_only=True)
    assert len(log.read(0, 400, 1 << 20)) == 400
    log.close()
