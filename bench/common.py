"""Shared types for benchmark modules.

A benchmark module exposes ``run(quick: bool) -> list[Row]``; ``python -m bench``
collects them into one table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Row:
    name: str
    """What is measured, e.g. ``P2 zoom call (parse+crop+resize)``."""
    value: float
    """Our measurement."""
    baseline: float
    """The baseline, measured in the same run."""
    unit: str
    """Unit of value and baseline (``s``, ``MB``, ``calls``…)."""
    goal: str
    """Human-readable goal, e.g. ``<= 1.15x``."""
    ok: bool
    """Whether the goal is met."""
    detail: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")


def best_time(fn: Callable[[], object], repeat: int = 5, number: int = 1) -> float:
    """Best wall time of ``number`` calls of ``fn`` over ``repeat`` tries, per call."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best
