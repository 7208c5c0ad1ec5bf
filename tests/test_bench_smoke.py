"""The benchmarks still run (figures are not checked: speed is `make bench`'s job)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_storage_quick_run_prints_its_table():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "storage_bench.py"), "--quick", "--rounds", "1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "bars:" in result.stdout and "group commit, 16 thread(s)" in result.stdout
    assert not (ROOT / ".bench-tmp").exists() or not any((ROOT / ".bench-tmp").iterdir())
