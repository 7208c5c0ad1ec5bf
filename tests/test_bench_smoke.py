"""The benchmarks still run (figures are not checked: speed is `make bench`'s job)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize(("script", "expected"), [
    ("storage_bench.py", "group commit, 16 thread(s)"),
    ("publish_bench.py", "publish batch=100"),
    ("stream_bench.py", "stream batch_limit=1"),
    ("subscription_bench.py", "publish -> consumer p99"),
    ("filter_bench.py", '10%: {"exact":{"currency":"CHF"}}'),
    ("startup_bench.py", "start-up over 0.03 GiB, warm cache"),
])
def test_bench_quick_run_prints_its_table(script, expected):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick", "--rounds", "1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "bars:" in result.stdout and expected in result.stdout, result.stdout[-2000:]


@pytest.mark.slow
def test_redis_bench_quick_run_prints_its_table_or_says_redis_is_missing():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "redis_bench.py"), "--quick", "--rounds", "1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    if shutil.which("redis-server") is None:
        assert "redis-server is not installed" in result.stdout
    else:
        assert "bars:" in result.stdout and "read backlog vs XREAD COUNT 100" in result.stdout, result.stdout[-2000:]


@pytest.mark.slow
def test_bench_rows_become_the_results_table(tmp_path):
    rows = tmp_path / "rows.jsonl"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "startup_bench.py"), "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "BENCH_RESULTS": str(rows)})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = tmp_path / "results.md"
    rendered = subprocess.run([sys.executable, str(ROOT / "bench" / "results.py"), str(rows), str(results)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    table = results.read_text()
    assert "| startup_bench | start-up over 0.03 GiB, warm cache |" in table and "Machine: " in table
    assert table.rstrip().endswith("Bars: 1 of 1 pass.") and table in rendered.stdout
