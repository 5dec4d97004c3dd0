"""Avg@K accuracy and the per benchmark × difficulty × budget summary.

Avg@K: each item is sampled K times; its accuracy is the mean verdict of its scored
samples, and the benchmark accuracy is the mean over items. Unscorable samples
(``verdict`` None: the judge failed) are left out and counted, never scored 0, in
``accuracy``; ``accuracy_failures_as_0`` is the released code's number, where a failed
judge call scores 0 (``minio3 eval --judge-failures zero`` makes it the headline).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable, Mapping, Sequence

from ..core.episode import OVERTURN_REASONS, TERMINATION_REASONS
from .runner import at_budget

__all__ = ["avg_at_k", "summarize", "DEFAULT_BUDGETS"]

DEFAULT_BUDGETS = (4, 8, 16, 32)


def avg_at_k(verdicts: Mapping[str, Sequence[int | float | None]]) -> dict[str, Any]:
    """Avg@K over ``{item id: [verdict of each sample]}``.

    >>> avg_at_k({"a": [1, 0], "b": [1, 1], "c": [None]})
    {'accuracy': 0.75, 'items': 2, 'samples': 4, 'unscored': 1, 'accuracy_failures_as_0': 0.5}
    """
    per_item, as_zero = [], []
    samples = unscored = 0
    for values in verdicts.values():
        scored = [float(v) for v in values if v is not None]
        unscored += len(values) - len(scored)
        samples += len(scored)
        if scored:
            per_item.append(sum(scored) / len(scored))
        if values:
            as_zero.append(sum(scored) / len(values))
    accuracy = sum(per_item) / len(per_item) if per_item else None
    return {"accuracy": accuracy, "items": len(per_item), "samples": samples, "unscored": unscored,
            "accuracy_failures_as_0": sum(as_zero) / len(as_zero) if as_zero else None}


def summarize(
    trajectories: Iterable[Mapping[str, Any]],
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    masked_reasons: Iterable[str] = OVERTURN_REASONS,
) -> dict[str, Any]:
    """Rows of accuracy, termination-reason shares and mean turns per benchmark ×
    difficulty × budget, derived from scored trajectories run under the largest budget.

    A benchmark with several difficulties also gets a ``difficulty == "all"`` row.
    """
    masked = frozenset(masked_reasons)
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for t in trajectories:
        groups[(t.get("benchmark", t.get("data_source", "unknown")), t.get("difficulty", "all"))].append(t)
    by_bench: dict[str, list[str]] = defaultdict(list)
    for bench, level in groups:
        by_bench[bench].append(level)
    keys = sorted(groups)
    for bench, levels in by_bench.items():
        if len(levels) > 1 and "all" not in levels:
            groups[(bench, "all")] = [t for lv in levels for t in groups[(bench, lv)]]
            keys.append((bench, "all"))
    rows = []
    for bench, level in sorted(keys):
        for budget in sorted(budgets):
            views = [at_budget(t, budget, masked) for t in groups[(bench, level)]]
            verdicts: dict[str, list] = defaultdict(list)
            for v in views:
                verdicts[str(v["id"])].append(v.get("verdict"))
            reasons = Counter(v["termination_reason"] for v in views)
            n = len(views)
            rows.append({
                "benchmark": bench, "difficulty": level, "budget": budget,
                **avg_at_k(verdicts),
                "k": max((len(x) for x in verdicts.values()), default=0),
                "reasons": {r: reasons[r] / n for r in TERMINATION_REASONS if reasons[r]},
                "mean_turns": sum(v["num_turns"] for v in views) / n if n else 0.0,
            })
    return {"budgets": sorted(budgets), "rows": rows}
