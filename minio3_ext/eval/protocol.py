"""Evaluation protocol presets and the paper-shaped comparison table.

``minio3 eval --protocol NAME`` fills the run's settings from a preset; any flag given
explicitly on the command line wins over the preset's value:

- ``released``: what the authors' released evaluation runs — 12 turns, 12 images per
  context, Avg@32 (``val_n=32``), the released engine's sampling (temperature 1.0, top_p 1,
  top_k -1, repetition penalty 1, min_p 0), lossless images (PNG), the context counted
  exactly against 30,768 tokens (32,768 − 2,000), the released judge
  (:mod:`minio3_ext.judge.released`) with its failures counted as 0, and the released
  dialect preset (``--preset released``);
- ``paper-curve``: the paper's accuracy-vs-turn-budget plot — budgets 4, 8, 16, 32
  (33 images: the original and one per turn), Avg@32, temperature 1.0.

After a run, :func:`paper_table` lays the results out like the paper's main table
(benchmark columns, VisualProbe by difficulty, one row per turn budget) next to the
published Mini-o3 row and the difference.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["Protocol", "PROTOCOLS", "PROTOCOL_DESTS", "PAPER_COLUMNS", "PAPER_MINIO3", "PAPER_K", "apply_protocol",
           "paper_table", "paper_rows"]


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    """argparse destinations → values (``k``, ``budgets``, ``temperature``, ``max_images``, ``judge_preset``,
    ``preset``)."""


PROTOCOLS: dict[str, Protocol] = {
    "released": Protocol(
        "released", "the released evaluation: 12 turns, 12 images, Avg@32, the released engine's sampling, "
        "PNG images, exact 30768-token context, released judge with failures as 0",
        # Mini-o3 README: val_max_generation_round=12, val_limit_mm_per_prompt={'image': 12}, val_n=32,
        # val_do_sample=True at temperature 1.0; reward general_qa_tool (the released judge)
        # released edge cases too (boxes clamped, observation_0 = original, any <grounding> zooms)
        # vllm_async_engine.py ~311-327: SamplingParams(temperature=1.0, top_k=-1, top_p=1) over every
        # generation_config default; ~708/717: exceed at max_total_response_length - 2000 counted in token ids;
        # images go to vLLM as PIL objects (no lossy encoding); general_qa_tool.py scores a failed judge call 0
        {"budgets": (12,), "max_images": 12, "k": 32, "judge_preset": "released", "preset": "released",
         "temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "min_p": 0.0,
         "image_format": "png", "max_context_tokens": 30768, "token_count": "exact", "judge_failures": "zero"}),
    "paper-curve": Protocol(
        "paper-curve", "the paper's accuracy-vs-turn-budget curve: budgets 4, 8, 16, 32, Avg@32, temperature 1.0",
        {"budgets": (4, 8, 16, 32), "max_images": 33, "k": 32, "temperature": 1.0}),
}

#: The paper's main-table columns: (label, benchmark, difficulty) as ``summarize`` names them.
PAPER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("VP hard", "visual_probe", "hard"), ("VP medium", "visual_probe", "medium"),
    ("VP easy", "visual_probe", "easy"), ("V*", "vstar_bench", "all"), ("HR-4K", "hr_bench_4k", "all"),
    ("HR-8K", "hr_bench_8k", "all"), ("MME-RW", "mme_realworld", "all"),
)
#: Mini-o3 (7B) in the paper's main table, accuracy in %.
PAPER_MINIO3: dict[str, float] = {"VP hard": 48.0, "VP medium": 50.4, "VP easy": 67.0, "V*": 88.2, "HR-4K": 77.5,
                                  "HR-8K": 73.3, "MME-RW": 65.5}
#: K the paper averaged over per column.
PAPER_K: dict[str, int] = {"VP hard": 32, "VP medium": 32, "VP easy": 32, "V*": 32, "HR-4K": 8, "HR-8K": 8,
                           "MME-RW": 1}


#: The settings a protocol may fill (argparse destinations of ``minio3 eval``).
PROTOCOL_DESTS = ("k", "budgets", "max_images", "judge_preset", "preset", "image_format", "max_context_tokens",
                  "token_count", "judge_failures", "temperature", "top_p", "top_k", "repetition_penalty", "min_p")


def apply_protocol(args: argparse.Namespace, explicit: Iterable[str] = ()) -> Protocol | None:
    """Fill ``args`` from the preset named by ``args.protocol`` (``None``: nothing to
    do); destinations in ``explicit`` (flags the user gave) keep their values.
    Raises ``ValueError`` for an unknown name."""
    name = getattr(args, "protocol", None)
    if not name:
        return None
    if name not in PROTOCOLS:
        raise ValueError(f"unknown --protocol {name!r}; expected one of {sorted(PROTOCOLS)}")
    protocol = PROTOCOLS[name]
    given = set(explicit)
    for dest, value in protocol.settings.items():
        if dest not in given:
            setattr(args, dest, value)
    return protocol


def _lookup(rows: Sequence[Mapping[str, Any]], benchmark: str, difficulty: str, budget: int) -> Mapping | None:
    hits = [r for r in rows if r["benchmark"] == benchmark and r["budget"] == budget]
    exact = [r for r in hits if r["difficulty"] == difficulty]
    if exact:
        return exact[0]
    if difficulty == "all" and len({r["difficulty"] for r in hits}) == 1:
        return hits[0]  # a benchmark run at one difficulty only has no "all" row
    return None


def paper_rows(summary: Mapping[str, Any], key: str = "accuracy") -> dict[int, dict[str, Mapping[str, Any]]]:
    """``{budget: {column label: summary row}}`` for the paper's columns present in the run
    (rows whose ``key`` accuracy is known)."""
    out: dict[int, dict[str, Mapping[str, Any]]] = {}
    for budget in summary["budgets"]:
        cells = {}
        for label, bench, level in PAPER_COLUMNS:
            row = _lookup(summary["rows"], bench, level, budget)
            if row is not None and row.get(key) is not None:
                cells[label] = row
        if cells:
            out[budget] = cells
    return out


#: What the difference row says when the run's judge was the rule-only one.
RULE_JUDGE_NOTE = "rule-only judge: not comparable, the paper's numbers come from a model judge"


def paper_table(summary: Mapping[str, Any], *, failures_as_0: bool = False, rule_judge: bool = False) -> str | None:
    """Markdown: one row per turn budget (Avg@K accuracy in %), the paper's Mini-o3 row,
    and the difference (largest budget − paper). ``None`` when the run holds none of
    the paper's benchmarks. ``failures_as_0``: accuracy with failed judge calls scored 0
    (the released code's) instead of excluded; ``rule_judge``: the run's judge was the
    rule-only one, which the difference row says."""
    key = "accuracy_failures_as_0" if failures_as_0 else "accuracy"
    by_budget = paper_rows(summary, key)
    if not by_budget:
        return None
    labels = [label for label, _, _ in PAPER_COLUMNS]
    lines = ["| model | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for budget, cells in sorted(by_budget.items()):
        ks = sorted({int(c["k"]) for c in cells.values()})
        k = "/".join(map(str, ks))
        values = [f"{100 * cells[l][key]:.1f}" if l in cells else "–" for l in labels]
        lines.append(f"| this run, {budget} turns (Avg@{k}) | " + " | ".join(values) + " |")
    lines.append("| Mini-o3 (paper) | " + " | ".join(f"{PAPER_MINIO3[l]:.1f}" for l in labels) + " |")
    last = by_budget[max(by_budget)]
    diffs = [f"{100 * last[l][key] - PAPER_MINIO3[l]:+.1f}" if l in last else "–" for l in labels]
    note = f"; {RULE_JUDGE_NOTE}" if rule_judge else ""
    lines.append(f"| difference ({max(by_budget)} turns − paper{note}) | " + " | ".join(diffs) + " |")
    lines.append("")
    lines.append("Paper: Avg@K with K = " + ", ".join(f"{l} {PAPER_K[l]}" for l in labels)
                 + "; accuracy in %" + ("; a failed judge call counts as 0" if failures_as_0 else
                                         "; failed judge calls left out") + ".")
    if rule_judge:
        lines.append(f"Warning: {RULE_JUDGE_NOTE} (pass --judge-base-url and --judge-model).")
    return "\n".join(lines)
