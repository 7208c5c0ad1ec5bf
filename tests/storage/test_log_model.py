"""The partition log against a list model, with crashes and reopens.

A crash abandons the log without closing it and cuts every segment file
back to what was fdatasynced plus a random torn tail (sometimes zeroed),
as a power loss would. Acknowledged records must survive; unacknowledged
ones may survive only as a whole-frame prefix; reads always equal the model.
"""

import os

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from storage import FileIO, LogConfig, PartitionLog

CONFIG = LogConfig(segment_bytes_max=1024, frame_bytes_max=1024, index_interval_bytes=128, index_bytes_max=64)
batches = st.lists(st.binary(min_size=0, max_size=120), min_size=1, max_size=6)


class SyncTracingIO(FileIO):
    """Remembers each file's synced length and its open descriptors."""

    def __init__(self):
        self.paths = {}
        self.synced = {}

    def open(self, path, flags):
        fd = super().open(path, flags)
        self.paths[fd] = path
        self.synced.setdefault(path, os.fstat(fd).st_size)
        return fd

    def close(self, fd):
        self.paths.pop(fd, None)
        super().close(fd)

    def fdatasync(self, fd):
        super().fdatasync(fd)
        self.synced[self.paths[fd]] = os.fstat(fd).st_size

    def ftruncate(self, fd, size):
        super().ftruncate(fd, size)
        path = self.paths[fd]
        self.synced[path] = min(self.synced[path], size)

    def unlink(self, path):
        super().unlink(path)
        self.synced.pop(path, None)

    def crash(self):
        for fd in list(self.paths):
            self.close(fd)


class FakeClock:
    ms = 1_000_000

    def __call__(self):
        return self.ms


class LogModel(RuleBasedStateMachine):
    @initialize(directory=st.just(None))
    def start(self, directory):
        import tempfile

        self.directory = tempfile.mkdtemp(prefix="logmodel-")
        self.clock = FakeClock()
        self.io = SyncTracingIO()
        self.log = PartitionLog.open(self.directory, CONFIG, io=self.io, clock=self.clock)
        self.start_offset = 0
        self.acked = []
        self.pending = []

    def teardown(self):
        import shutil

        if getattr(self, "log", None) is not None:
            self.log.close()
            shutil.rmtree(self.directory, ignore_errors=True)

    def _acknowledge_pending(self):
        for frame in self.pending:
            self.acked.extend(frame)
        self.pending = []

    @rule(payloads=batches, step_ms=st.integers(0, 50))
    def append(self, payloads, step_ms):
        self.clock.ms += step_ms
        appended = self.log.append(payloads)
        self._acknowledge_pending()
        self.acked.extend((p, appended.received_ms) for p in payloads)

    @rule(payloads=batches)
    def write_without_sync(self, payloads):
        appended = self.log.write(payloads)
        self.pending.append([(p, appended.received_ms) for p in payloads])
        while self.start_offset + len(self.acked) < self.log.end_offset:
            self.acked.extend(self.pending.pop(0))

    @rule()
    def sync(self):
        self.log.sync()
        self._acknowledge_pending()

    @rule()
    def roll(self):
        self.log.roll()
        self._acknowledge_pending()

    @precondition(lambda self: not self.pending)
    @rule(fraction=st.floats(0.1, 1.0))
    def retention_by_size(self, fraction):
        size = self.log.statistics().size_bytes
        self.log.enforce_retention(retention_bytes=int(size * fraction))
        self._drop_to(self.log.start_offset)

    @precondition(lambda self: not self.pending)
    @rule(age_ms=st.integers(0, 300), advance_ms=st.integers(0, 300))
    def retention_by_time(self, age_ms, advance_ms):
        self.clock.ms += advance_ms
        self.log.enforce_retention(retention_ms=age_ms)
        dropped = self.acked[: self.log.start_offset - self.start_offset]
        assert all(ms < self.clock.ms - age_ms for _, ms in dropped)
        self._drop_to(self.log.start_offset)

    def _drop_to(self, start):
        assert start >= self.start_offset
        del self.acked[: start - self.start_offset]
        self.start_offset = start

    @rule(offset_fraction=st.floats(0, 1), max_records=st.integers(1, 30), max_bytes=st.integers(1, 2000))
    def read(self, offset_fraction, max_records, max_bytes):
        offset = self.start_offset + int(offset_fraction * len(self.acked))
        records = self.log.read(offset, max_records, max_bytes)
        expected = self.acked[offset - self.start_offset:][:max_records]
        assert [r.payload for r in records] == [p for p, _ in expected[: len(records)]]
        assert [r.offset for r in records] == list(range(offset, offset + len(records)))
        if offset < self.log.end_offset:
            assert records and (len(records) == len(expected) or sum(len(r.payload) for r in records) <= max_bytes
                                or len(records) == 1)

    @rule(rng=st.randoms(use_true_random=False), zero_fill=st.booleans())
    def crash(self, rng, zero_fill):
        self.io.crash()
        self.log = None
        for name in os.listdir(self.directory):
            path = os.path.join(self.directory, name)
            if not name.endswith(".log"):
                continue
            size = os.path.getsize(path)
            synced = self.io.synced.get(path, 0)
            keep = rng.randint(synced, size) if size > synced else size
            with open(path, "r+b") as f:
                f.truncate(keep)
                if zero_fill and keep > synced:
                    f.seek(synced)
                    f.write(bytes(keep - synced))
        self.io = SyncTracingIO()
        self.log = PartitionLog.open(self.directory, CONFIG, io=self.io, clock=self.clock)
        survivors = self._all()
        assert [p for p, _ in survivors[: len(self.acked)]] == [p for p, _ in self.acked], "acknowledged records lost"
        extra = survivors[len(self.acked):]
        prefix = []
        for frame in self.pending:
            if len(prefix) >= len(extra):
                break
            prefix.extend(frame)
        assert [p for p, _ in extra] == [p for p, _ in prefix], "unacknowledged records must be a whole-frame prefix"
        self.acked = survivors
        self.pending = []

    @rule()
    def reopen(self):
        self.log.close()
        self.log = None
        self._acknowledge_pending()
        self.io = SyncTracingIO()
        self.log = PartitionLog.open(self.directory, CONFIG, io=self.io, clock=self.clock)
        assert not self.log.recovery.actions("truncated_tail")

    def _all(self):
        records, offset = [], self.log.start_offset
        assert offset == self.start_offset
        while offset < self.log.end_offset:
            chunk = self.log.read(offset, 1000)
            records.extend((r.payload, r.received_ms) for r in chunk)
            offset = chunk[-1].offset + 1
        return records

    @invariant()
    def reads_equal_the_model(self):
        if getattr(self, "log", None) is None:
            return
        assert self.log.start_offset == self.start_offset
        assert self.log.end_offset == self.start_offset + len(self.acked)
        assert self._all() == self.acked


LogModel.TestCase.settings = settings(stateful_step_count=50, max_examples=100)
test_log_model_against_list = LogModel.TestCase
