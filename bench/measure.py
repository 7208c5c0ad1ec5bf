"""What every benchmark shares: alternating rounds of ours and a ceiling,
medians with min and max, the ratio against a bar, the machine, and the
rows of `make bench`'s results table (`record`, rendered by
`bench/results.py` into bench/results.md)."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import sys
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar


class Measured(Protocol):
    @property
    def rate(self) -> float:
        """What the ratio compares: per second, the larger the better."""


S = TypeVar("S", bound=Measured)


@dataclasses.dataclass(frozen=True)
class Comparison(Generic[S]):
    """Rounds of ours and of the ceiling for one figure, and its bar."""

    name: str
    ours: list[S]
    ceiling: list[S]
    bar: float | None = None

    @property
    def ratios(self) -> list[float]:
        return [o.rate / c.rate for o, c in zip(self.ours, self.ceiling, strict=True)]

    @property
    def passed(self) -> bool | None:
        return None if self.bar is None else statistics.median(self.ratios) >= self.bar

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "informational"
        return f">= {self.bar:g}x " + ("PASS" if self.passed else "FAIL <<<<<<<<")


def alternate(rounds: int, runs: Sequence[Callable[[], S]]) -> list[list[S]]:
    """`rounds` rounds of every run, the order rotating each round; samples per run."""
    samples: list[list[S]] = [[] for _ in runs]
    for i in range(rounds):
        order = list(range(len(runs)))
        if i % 2:
            order.reverse()
        for k in order:
            samples[k].append(runs[k]())
    return samples


def spread(values: Sequence[float], fmt: str) -> str:
    """Median (min-max)."""
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def bars_line(results: Sequence[Comparison]) -> str:
    failed = [c.name for c in results if c.passed is False]
    bars = sum(c.bar is not None for c in results)
    return f"bars: {bars - len(failed)} of {bars} PASS" + (f"; FAIL: {', '.join(failed)}" if failed else "")


RESULTS_VARIABLE = "BENCH_RESULTS"


def record(figure: str, ours: str, reference: str, ratio: str, bar: str) -> None:
    """One row of the results table: appended, as a JSON line naming this
    benchmark, to the file `BENCH_RESULTS` names (`make bench` sets it)."""
    path = os.environ.get(RESULTS_VARIABLE)
    if path:
        row = {"bench": Path(sys.argv[0]).stem, "figure": figure, "ours": ours, "reference": reference,
               "ratio": ratio, "bar": bar}
        with open(path, "a") as file:
            file.write(json.dumps(row) + "\n")


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
