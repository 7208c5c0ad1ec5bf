"""What every benchmark shares: alternating rounds of ours and a ceiling,
medians with min and max, the ratio against a bar, and the machine."""

from __future__ import annotations

import dataclasses
import platform
import statistics
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


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
