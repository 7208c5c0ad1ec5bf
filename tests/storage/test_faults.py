"""The server's test-only fault hooks: crash points that SIGKILL the
process at their n-th pass, and the trace of every sync."""

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage import CRASH_POINTS, FaultIO, LogConfig, PartitionLog, parse_fault


@pytest.mark.parametrize("spec", ["log.written:0", "log.written:x", "nowhere:1", "log.written"])
def test_parse_fault_refuses_what_it_cannot_use(spec):
    with pytest.raises(ValueError):
        parse_fault(spec)


def test_parse_fault_reads_point_and_pass():
    assert parse_fault("log.roll.synced:3") == ("log.roll.synced", 3)
    assert "cursor.commit.written" in CRASH_POINTS


def test_fault_io_traces_each_sync_with_the_length_synced(tmp_path):
    trace = tmp_path / "trace"
    log = PartitionLog.open(tmp_path / "p0", LogConfig(durability="always"), io=FaultIO(sync_trace=str(trace)))
    log.append([b"one"])
    log.append([b"two", b"three"])
    log.close()
    lines = [line.split("\t") for line in trace.read_text().splitlines()]
    segment_syncs = [(path, int(length)) for path, length in lines if path.endswith(".log")]
    assert segment_syncs, lines
    path, length = segment_syncs[-1]
    assert length == Path(path).stat().st_size
    assert any(int(length) == -1 for _, length in lines), "directory syncs are traced too"


@pytest.mark.slow
def test_fault_io_kills_the_process_at_the_nth_pass(tmp_path):
    script = textwrap.dedent(f"""
        from storage import FaultIO, LogConfig, PartitionLog
        log = PartitionLog.open({str(tmp_path / "p0")!r}, LogConfig(), io=FaultIO(("log.durable", 2)))
        for i in range(5):
            log.append([b"batch %d" % i])
            print(i, flush=True)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert result.stdout.split() == ["0"], "killed in the second append, before it returned"
    log = PartitionLog.open(tmp_path / "p0", LogConfig())
    assert [r.payload for r in log.read(0)][:1] == [b"batch 0"]
    log.close()
