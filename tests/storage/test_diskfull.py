"""Disk full and I/O errors: the k-th writev, fdatasync or ftruncate fails
(ENOSPC, EIO, EFBIG, or a short write followed by an error) for every k of a
scenario that crosses segment rolls, and a real RLIMIT_FSIZE in a child.

What must hold (RELIABILITY.md section 3): the failing append raises a
storage error and acknowledges nothing of its batch; every acknowledged
batch stays readable, byte-identical; reads keep working while writes fail;
the `.log` files hold no partial bytes; once the fault stops, appends resume
with dense offsets. A failed fdatasync is never retried and trusted.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage import (
    DiskFullError,
    FileIO,
    LogConfig,
    LogFailedError,
    PartitionLog,
    StorageError,
    WriteFailedError,
)

REPO = Path(__file__).resolve().parents[2]
DISK_FULL = (errno.ENOSPC, errno.EFBIG)
ERRNOS = [errno.ENOSPC, errno.EIO, errno.EFBIG]
CONFIG = LogConfig(segment_bytes_max=2048, frame_bytes_max=2048, index_interval_bytes=256, index_bytes_max=1024,
                   durability="always")
# 16 batches of 1-6 records of 48-120 bytes: about 5 KiB, so three or four rolls at 2 KiB.
BATCHES = [
    [f"b{i:02d}r{j:02d}-".encode() * (6 + (i * 7 + j * 3) % 10) for j in range(1 + (i * 5) % 6)]
    for i in range(16)
]


@dataclass(frozen=True)
class Fault:
    errno: int
    short: bool = False  # write half the bytes and return short; the next writev on that fd raises


class FaultyIO(FileIO):
    """Counts write-side calls by name (once armed) and fails chosen ones.

    `faults` maps (operation, n) to the `Fault` of the n-th call of that
    operation; `fail_every` maps an operation to an errno raised by all its
    calls. `fired` lists (operation, n, path, created) of each injected
    failure, `created` telling whether the fd was opened with O_CREAT (a
    new segment being created). `synced` lists the paths of successful
    fdatasyncs.
    """

    def __init__(self, faults: dict[tuple[str, int], Fault] | None = None,
                 fail_every: dict[str, int] | None = None, *, armed: bool = False) -> None:
        self.faults = dict(faults or {})
        self.fail_every = dict(fail_every or {})
        self.armed = armed
        self.calls: Counter[str] = Counter()
        self.fired: list[tuple[str, int, str | None, bool]] = []
        self.synced: list[str] = []
        self._files: dict[int, tuple[str, bool]] = {}
        self._owed: dict[int, int] = {}

    def _fault(self, op: str, fd: int) -> Fault | None:
        if not self.armed:
            return None
        self.calls[op] += 1
        fault = self.faults.get((op, self.calls[op]))
        if fault is None and op in self.fail_every:
            fault = Fault(self.fail_every[op])
        if fault is not None:
            path, created = self._files.get(fd, (None, False))
            self.fired.append((op, self.calls[op], path, created))
        return fault

    def open(self, path: str, flags: int) -> int:
        fault = self._fault("open", -1)
        if fault is not None:
            raise OSError(fault.errno, os.strerror(fault.errno), path)
        fd = super().open(path, flags)
        self._files[fd] = (path, bool(flags & os.O_CREAT))
        return fd

    def fsync_dir(self, path: str) -> None:
        fault = self._fault("fsync_dir", -1)
        if fault is not None:
            raise OSError(fault.errno, os.strerror(fault.errno), path)
        super().fsync_dir(path)

    def close(self, fd: int) -> None:
        self._files.pop(fd, None)
        self._owed.pop(fd, None)
        super().close(fd)

    def writev(self, fd, parts):
        if fd in self._owed:
            code = self._owed.pop(fd)
            raise OSError(code, os.strerror(code))
        fault = self._fault("writev", fd)
        if fault is None:
            return super().writev(fd, parts)
        if fault.short:
            data = b"".join(parts)
            self._owed[fd] = fault.errno
            return os.write(fd, data[: max(1, len(data) // 2)])
        raise OSError(fault.errno, os.strerror(fault.errno))

    def fdatasync(self, fd: int) -> None:
        fault = self._fault("fdatasync", fd)
        if fault is not None:
            raise OSError(fault.errno, os.strerror(fault.errno))
        super().fdatasync(fd)
        self.synced.append(self._files.get(fd, ("?", False))[0])

    def ftruncate(self, fd: int, size: int) -> None:
        fault = self._fault("ftruncate", fd)
        if fault is not None:
            raise OSError(fault.errno, os.strerror(fault.errno))
        super().ftruncate(fd, size)


class TickingClock:
    """A clock that advances 1 ms per reading, so `interval` syncs are deterministic."""

    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        self.ms += 1
        return self.ms


def all_payloads(log: PartitionLog) -> list[bytes]:
    out: list[bytes] = []
    offset = log.start_offset
    for _ in range(10_000):
        if offset >= log.end_offset:
            break
        records = log.read(offset, 100)
        assert [r.offset for r in records] == list(range(offset, offset + len(records))), "offsets not dense"
        out += [r.payload for r in records]
        offset = records[-1].offset + 1
    return out


def log_bytes_on_disk(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.log"))


def assert_no_partial_bytes(log: PartitionLog, directory: Path) -> None:
    stats = log.statistics()
    assert log_bytes_on_disk(directory) == stats.size_bytes, "bytes of a failed append were left in a .log file"
    assert len(list(directory.glob("*.log"))) == stats.segment_count, "a stray segment file was left"


def reopen_and_check(directory: Path, config: LogConfig, expected: list[bytes], *, torn_bytes: int = 0) -> None:
    """Reopen with plain I/O: recovery cuts exactly `torn_bytes`; the
    content is `expected`; one more append continues with no gap."""
    log = PartitionLog.open(directory, config)
    try:
        cut = log.recovery.actions("truncated_tail") + log.recovery.actions("truncated_damage")
        assert log.recovery.truncated_bytes == torn_bytes, cut
        assert len(cut) == (1 if torn_bytes else 0)
        assert all_payloads(log) == expected
        after = log.append([b"after-reopen"])
        assert after.first_offset == len(expected)
        assert all_payloads(log) == [*expected, b"after-reopen"]
    finally:
        log.close()


def count_calls(directory: Path, op: str, config: LogConfig, clock=None) -> int:
    """How many `op` calls the fault-free scenario makes after opening (close included)."""
    io = FaultyIO()
    log = PartitionLog.open(directory, config, io=io, **({"clock": clock} if clock else {}))
    io.armed = True
    for batch in BATCHES:
        log.append(batch)
    log.close()
    return io.calls[op]


def assert_write_failed(error: StorageError, injected: int) -> None:
    """The error names the errno; DiskFullError exactly for the disk-full ones."""
    assert isinstance(error, WriteFailedError), repr(error)
    assert not isinstance(error, LogFailedError)
    assert isinstance(error.__cause__, OSError), "the OSError must be the __cause__"
    assert error.errno == injected, error
    assert isinstance(error, DiskFullError) == (injected in DISK_FULL), repr(error)


# -- the k-th call fails: durability "always" --------------------------------


@pytest.mark.parametrize("err", ERRNOS, ids=errno.errorcode.get)
@pytest.mark.parametrize(("op", "short"), [("writev", False), ("writev", True), ("fdatasync", False)],
                         ids=["writev", "short-writev", "fdatasync"])
def test_partitionlog_kth_write_or_sync_failure_acks_nothing_and_resumes_without_gap(tmp_path, op, short, err):
    calls = count_calls(tmp_path / "dry", op, CONFIG)
    assert calls >= len(BATCHES)
    for k in range(1, calls + 2):  # the last k never fires: the fault-free control
        directory = tmp_path / f"k{k}"
        io = FaultyIO({(op, k): Fault(err, short)})
        log = PartitionLog.open(directory, CONFIG, io=io)
        io.armed = True
        expected: list[bytes] = []
        failures = 0
        for batch in BATCHES:
            try:
                appended = log.append(batch)
            except StorageError as e:
                failures += 1
                assert_write_failed(e, err)
                assert log.end_offset == len(expected), f"k={k}: a failed append moved the end offset"
                assert all_payloads(log) == expected, f"k={k}: reads changed after a failed append"
                assert_no_partial_bytes(log, directory)
                continue
            assert appended.first_offset == len(expected), f"k={k}: offset gap after a failure"
            assert appended.end_offset == len(expected) + len(batch)
            assert [r.payload for r in log.read(appended.first_offset, len(batch))] == batch
            expected += batch
        assert failures == len(io.fired) == (1 if k <= calls else 0), (k, io.fired)
        assert not log.statistics().failed
        assert_no_partial_bytes(log, directory)
        log.close()
        assert log_bytes_on_disk(directory) > 0
        reopen_and_check(directory, CONFIG, expected)


@pytest.mark.parametrize("op", ["writev", "fdatasync"])
def test_partitionlog_append_batches_kth_failure_fails_only_what_it_covers(tmp_path, op):
    """Rounds of four batches: a failed write fails its own batch only, a
    failed sync fails what it was to make durable (the log goes on after
    it, so later batches of the round may succeed); whatever is
    acknowledged is readable, dense and survives a reopen."""
    rounds = [BATCHES[i:i + 4] for i in range(0, len(BATCHES), 4)]
    dry = FaultyIO()
    log = PartitionLog.open(tmp_path / "dry", CONFIG, io=dry)
    dry.armed = True
    for batches in rounds:
        assert not any(isinstance(o, StorageError) for o in log.append_batches(batches))
    log.close()
    calls = dry.calls[op]
    for k in range(1, calls + 2):
        directory = tmp_path / f"k{k}"
        io = FaultyIO({(op, k): Fault(errno.EIO)})
        log = PartitionLog.open(directory, CONFIG, io=io)
        io.armed = True
        expected: list[bytes] = []
        failed_batches = 0
        for batches in rounds:
            fired_before = len(io.fired)
            outcomes = log.append_batches(batches)
            failed = [o for o in outcomes if isinstance(o, StorageError)]
            for error in failed:
                assert_write_failed(error, errno.EIO)
            if len(io.fired) > fired_before and op == "writev":
                assert len(failed) == 1, f"k={k}: a failed write failed other batches: {outcomes}"
            if len(io.fired) > fired_before and op == "fdatasync":
                assert failed, f"k={k}: a failed sync acknowledged the whole round"
            failed_batches += len(failed)
            for batch, outcome in zip(batches, outcomes, strict=True):
                if not isinstance(outcome, StorageError):
                    assert outcome.first_offset == len(expected), f"k={k}: offset gap after a failure"
                    expected += batch
            assert all_payloads(log) == expected
        assert (failed_batches > 0) == (k <= calls), (k, io.fired)
        assert_no_partial_bytes(log, directory)
        log.close()
        reopen_and_check(directory, CONFIG, expected)


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO], ids=errno.errorcode.get)
@pytest.mark.parametrize("op", ["writev", "fdatasync"])
def test_partitionlog_open_fails_cleanly_when_the_first_segment_cannot_be_created(tmp_path, op, err):
    directory = tmp_path / "p"
    io = FaultyIO({(op, 1): Fault(err)}, armed=True)
    with pytest.raises(WriteFailedError) as info:
        PartitionLog.open(directory, CONFIG, io=io)
    assert info.value.errno == err
    assert isinstance(info.value, DiskFullError) == (err in DISK_FULL)
    assert list(directory.glob("*.log")) == []
    reopen_and_check(directory, CONFIG, [])


@pytest.mark.parametrize("op", ["open", "fsync_dir"])
def test_partitionlog_roll_that_cannot_create_the_next_segment_raises_disk_full(tmp_path, op):
    """A full disk can refuse the new segment file itself (ENOSPC from
    open with O_CREAT) or the directory fsync that records it."""
    fds_before = len(os.listdir("/proc/self/fd"))
    directory = tmp_path / "p"
    io = FaultyIO({(op, 1): Fault(errno.ENOSPC)})
    log = PartitionLog.open(directory, CONFIG, io=io)
    io.armed = True
    expected: list[bytes] = []
    failures = 0
    for batch in BATCHES:
        try:
            appended = log.append(batch)
        except Exception as e:  # the point is which class escapes
            failures += 1
            assert isinstance(e, DiskFullError), f"a failed roll leaked {e!r} instead of a storage error"
            assert e.errno == errno.ENOSPC
            assert all_payloads(log) == expected
            continue
        assert appended.first_offset == len(expected)
        expected += batch
    assert failures == len(io.fired) == 1
    assert log.statistics().segment_count > 1
    log.close()
    reopen_and_check(directory, CONFIG, expected)
    assert len(os.listdir("/proc/self/fd")) == fds_before, "a segment that failed to roll in left its fd open"


# -- the cut-back itself fails ------------------------------------------------


@pytest.mark.parametrize("short", [False, True], ids=["writev", "short-writev"])
def test_partitionlog_failed_cut_back_after_failed_write_fails_log_but_reads_work(tmp_path, short):
    calls = count_calls(tmp_path / "dry", "writev", CONFIG)
    for k in range(1, calls + 1):
        directory = tmp_path / f"k{k}"
        io = FaultyIO({("writev", k): Fault(errno.ENOSPC, short)}, fail_every={"ftruncate": errno.EIO})
        log = PartitionLog.open(directory, CONFIG, io=io)
        io.armed = True
        expected: list[bytes] = []
        failed: LogFailedError | None = None
        torn = 0
        for batch in BATCHES:
            if failed is not None:
                with pytest.raises(LogFailedError):
                    log.append(batch)
                assert all_payloads(log) == expected
                continue
            try:
                appended = log.append(batch)
            except LogFailedError as e:
                # The frame write failed and cutting it back failed too.
                failed = e
                assert isinstance(e.__cause__, OSError) and e.__cause__.errno == errno.EIO
                assert log.statistics().failed
                assert all_payloads(log) == expected, "reads must keep working on a failed log"
                torn = log_bytes_on_disk(directory) - log.statistics().size_bytes
                assert (torn > 0) == short, "only a short write leaves bytes behind"
                continue
            except WriteFailedError as e:
                # A new segment's header failed: it is unlinked, no cut needed.
                assert_write_failed(e, errno.ENOSPC)
                assert io.fired[-1][3], "only a segment creation may fail without failing the log"
                continue
            assert appended.first_offset == len(expected)
            expected += batch
        log.close()
        if failed is None:
            assert all(created for _, _, _, created in io.fired), io.fired
        reopen_and_check(directory, CONFIG, expected, torn_bytes=torn)


def test_partitionlog_reopen_after_failed_sync_and_cut_syncs_what_it_serves(tmp_path):
    """fdatasync fails and the cut-back fails: the batch after the durable
    point is unacknowledged and maybe lost by the kernel. A reopen may drop
    it, or serve it only after making it durable: never trust it as is."""
    directory = tmp_path / "p"
    io = FaultyIO(fail_every={"ftruncate": errno.EIO})
    log = PartitionLog.open(directory, CONFIG, io=io)
    acked = BATCHES[0]
    log.append(acked)
    io.armed = True
    io.faults[("fdatasync", 1)] = Fault(errno.EIO)
    with pytest.raises(LogFailedError):
        log.append(BATCHES[1])
    assert all_payloads(log) == acked
    log.close()

    spy = FaultyIO(armed=True)
    log = PartitionLog.open(directory, CONFIG, io=spy)
    try:
        served = all_payloads(log)
        assert served[: len(acked)] == acked
        assert served in (acked, acked + BATCHES[1]), "at most the unacknowledged batch, once"
        if len(served) > len(acked):
            active = str(sorted(directory.glob("*.log"))[-1])
            assert active in spy.synced, (
                "recovery serves records that were never durably synced (a failed fdatasync is trusted)")
    finally:
        log.close()


# -- several appenders waiting on one failed sync ------------------------------


class GatedSyncIO(FileIO):
    """The first fdatasync after `gate()` blocks until `release()`, then raises `err`."""

    def __init__(self, err: int) -> None:
        self.err = err
        self.entered = threading.Event()
        self._release = threading.Event()
        self._gated = False

    def gate(self) -> None:
        self._gated = True

    def release(self) -> None:
        self._release.set()

    def fdatasync(self, fd: int) -> None:
        if self._gated:
            self._gated = False
            self.entered.set()
            assert self._release.wait(10)
            raise OSError(self.err, os.strerror(self.err))
        super().fdatasync(fd)


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO], ids=errno.errorcode.get)
def test_partitionlog_failed_group_sync_fails_every_waiting_append_with_the_cause(tmp_path, err):
    directory = tmp_path / "p"
    io = GatedSyncIO(err)
    config = LogConfig(durability="always")
    log = PartitionLog.open(directory, config, io=io)
    acked = [b"acked-0", b"acked-1"]
    log.append(acked)
    results: dict[str, object] = {}

    def append(name: str, batch: list[bytes]) -> None:
        try:
            results[name] = log.append(batch)
        except StorageError as e:
            results[name] = e

    io.gate()
    leader = threading.Thread(target=append, args=("leader", [b"leader"]))
    waiter = threading.Thread(target=append, args=("waiter", [b"waiter-0", b"waiter-1"]))
    leader.start()
    try:
        assert io.entered.wait(10), "the leader never reached fdatasync"
        waiter.start()
        deadline = time.monotonic() + 10
        while log.statistics().written_end_offset < 5 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert log.statistics().written_end_offset == 5, "the waiter never wrote its frame"
        assert all_payloads(log) == acked, "unsynced records must stay invisible"
    finally:
        io.release()
        leader.join(10)
        if waiter.ident is not None:
            waiter.join(10)
    assert not leader.is_alive() and not waiter.is_alive()

    for name in ("leader", "waiter"):
        error = results[name]
        assert isinstance(error, WriteFailedError), f"{name}: {error!r}"
        assert not isinstance(error, LogFailedError)
    leader_error, waiter_error = results["leader"], results["waiter"]
    assert leader_error.errno == err and isinstance(leader_error, DiskFullError) == (err in DISK_FULL)
    assert log.end_offset == 2 and all_payloads(log) == acked
    assert_no_partial_bytes(log, directory)
    assert log.append([b"next"]).first_offset == 2, "the log must continue from the durable end"
    log.close()
    reopen_and_check(directory, config, [*acked, b"next"])
    # A waiter that lost its records to the same failed fdatasync must learn
    # why, like the leader: the API maps DiskFullError to 507 naming the errno.
    assert type(waiter_error) is type(leader_error), f"waiter got {waiter_error!r}, leader {leader_error!r}"
    assert waiter_error.errno == err, f"waiter got {waiter_error!r}"


# -- relaxed durability: a failed fdatasync fails the log ----------------------


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO], ids=errno.errorcode.get)
@pytest.mark.parametrize("durability", ["interval", "never"])
def test_partitionlog_failed_sync_under_relaxed_durability_fails_log_until_reopen(tmp_path, durability, err):
    config = LogConfig(segment_bytes_max=2048, frame_bytes_max=2048, index_interval_bytes=256, index_bytes_max=1024,
                       durability=durability, sync_interval_ms=3)
    calls = count_calls(tmp_path / "dry", "fdatasync", config, TickingClock())
    assert calls >= 3
    data_syncs_failed = 0
    for k in range(1, calls + 2):
        directory = tmp_path / f"k{k}"
        io = FaultyIO({("fdatasync", k): Fault(err)})
        log = PartitionLog.open(directory, config, io=io, clock=TickingClock())
        io.armed = True
        expected: list[bytes] = []
        failed: LogFailedError | None = None
        for batch in BATCHES:
            if failed is not None:
                with pytest.raises(LogFailedError):
                    log.append(batch)
                continue
            try:
                appended = log.append(batch)
            except LogFailedError as e:
                failed = e
                op, _, path, created = io.fired[-1]
                assert (op, created) == ("fdatasync", False) and path.endswith(".log"), io.fired
                assert isinstance(e.__cause__, OSError) and e.__cause__.errno == err
                assert log.statistics().failed
                served = all_payloads(log)
                # Under `interval` the batch whose sync failed was already
                # written and visible: indeterminate, present at most once.
                assert served in (expected, expected + batch), "reads must keep working on a failed log"
                expected = served
                continue
            except WriteFailedError as e:
                assert_write_failed(e, err)
                assert io.fired[-1][3], "only a new segment's header sync may fail without failing the log"
                assert all_payloads(log) == expected
                continue
            assert appended.first_offset == len(expected)
            expected += batch
        if failed is not None:
            data_syncs_failed += 1
            assert all_payloads(log) == expected
        try:
            log.close()
        except WriteFailedError as e:
            # The k-th fdatasync was the one close makes; the records stay acknowledged.
            assert failed is None and e.errno == err and io.fired[-1][1] == calls
        assert len(io.fired) == (1 if k <= calls else 0)
        reopen_and_check(directory, config, expected)
    assert data_syncs_failed >= 1, "no k hit the sync of a data segment"


# -- a real file size limit in a child process ---------------------------------

RLIMIT_CHILD = textwrap.dedent("""
    import errno, json, os, resource, sys
    from storage import DiskFullError, LogConfig, PartitionLog

    directory, limit = sys.argv[1], int(sys.argv[2])
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))

    def payload(seq):
        return b"%08d" % seq * 128

    config = LogConfig(segment_bytes_max=4 * limit, frame_bytes_max=4 * limit, index_bytes_max=4096,
                       durability="always")
    log = PartitionLog.open(directory, config)
    end, error = 0, None
    for seq in range(2 * limit // 1024):
        try:
            appended = log.append([payload(seq)])
        except DiskFullError as e:
            error = e
            break
        assert appended.first_offset == end, (appended, end)
        end = appended.end_offset
    assert error is not None, "never hit the file size limit"
    full_at = end
    assert [r.payload for r in log.read(0, 10_000, 1 << 30)] == [payload(s) for s in range(end)]
    on_disk = sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory) if n.endswith(".log"))
    assert on_disk == log.statistics().size_bytes, (on_disk, log.statistics())
    try:
        log.append([payload(end)])
        still_full = None
    except DiskFullError as e:
        still_full = e.errno
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    for seq in range(end, end + 20):
        appended = log.append([payload(seq)])
        assert appended.first_offset == end, (appended, end)
        end = appended.end_offset
    log.close()
    print(json.dumps({"errno": error.errno, "cause": type(error.__cause__).__name__, "full_at": full_at,
                      "still_full": still_full, "end": end, "on_disk_when_full": on_disk}), flush=True)
""")


@pytest.mark.slow
def test_partitionlog_file_size_limit_gives_efbig_and_resumes_without_gap(tmp_path):
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    limit = 256 * 1024
    if hard != resource.RLIM_INFINITY and hard < 4 * limit:
        pytest.skip(f"RLIMIT_FSIZE hard limit {hard} is too low to raise the limit again")
    directory = tmp_path / "p"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    child = subprocess.run([sys.executable, "-W", "error", "-c", RLIMIT_CHILD, str(directory), str(limit)],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    assert result["errno"] == errno.EFBIG and result["cause"] == "OSError"
    assert result["still_full"] == errno.EFBIG, "an append while still full must fail, not half-write"
    assert 200 <= result["full_at"] <= limit // 1024
    assert result["on_disk_when_full"] <= limit
    assert result["end"] == result["full_at"] + 20

    config = LogConfig(segment_bytes_max=4 * limit, frame_bytes_max=4 * limit, index_bytes_max=4096)
    log = PartitionLog.open(directory, config)
    try:
        assert log.recovery.truncated_bytes == 0, log.recovery.events
        records = log.read(0, 10_000, 1 << 30)
        assert [r.offset for r in records] == list(range(result["end"]))
        assert [r.payload for r in records] == [b"%08d" % s * 128 for s in range(result["end"])]
    finally:
        log.close()
