"""Renders `make bench`'s results table: the rows the benchmarks recorded
(`measure.record`, JSON lines in the file BENCH_RESULTS named) into
bench/results.md, with the machine they ran on, and prints the same table.

Usage: results.py ROWS_FILE RESULTS_MD
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

from measure import cpu_model


def render(rows: list[dict[str, str]]) -> str:
    machine = (f"{cpu_model()}, {os.cpu_count()} cores; CPython {platform.python_version()}; "
               f"{platform.system()} {platform.release()}")
    lines = ["# Benchmark results", "",
             f"Written by `make bench` on {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC.",
             f"Machine: {machine}.", "",
             "Every figure is the median of several rounds (min-max), ours and its reference alternating in "
             "the same run; docs/performance.md says what limits each.", "",
             "| benchmark | figure | ours | ceiling or peer | ratio | bar |", "|---|---|---|---|---|---|"]
    for row in rows:
        cells = [row["bench"], row["figure"], row["ours"], row["reference"], row["ratio"], row["bar"]]
        lines.append("| " + " | ".join(" ".join(cell.replace("|", "/").split()) for cell in cells) + " |")
    failed = sum("FAIL" in row["bar"] for row in rows)
    bars = sum(("PASS" in row["bar"]) or ("FAIL" in row["bar"]) for row in rows)
    lines += ["", f"Bars: {bars - failed} of {bars} pass."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    rows_file, results = Path(argv[1]), Path(argv[2])
    rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line] if rows_file.exists() else []
    text = render(rows)
    results.write_text(text)
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
