"""The ``minio3 demo`` numbers of docs/demo.md come from the current code: a fresh default run
(``minio3 demo``, ~5 minutes on 2 cores) is compared with every number docs/demo.md
reports for it — both tables, the per-seed sentence and the gains quoted after them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from minio3_ext.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "docs" / "demo.md"  # every demo number; the README quotes the stage B table and gains
STAGE_B_ROWS = {"cold start (BC)": "sft", "masked GRPO": "masked", "plain GRPO": "plain"}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(text: str, title: str) -> tuple[list[str], dict[str, list[str]]]:
    """(header cells after the first, {row label: cells}) of the markdown table whose header starts with ``title``."""
    lines = text.splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.startswith(f"| {title}")]
    header = _cells(lines[start])[1:]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = _cells(line)
        rows[cells[0]] = cells[1:]
    return header, rows


def _budget(cell: str) -> str:
    return re.match(r"(?:budget )?(\d+)", cell).group(1)


def readme_numbers(text: str) -> dict[str, str]:
    """Every demo number of the README, as printed, keyed by what it reports."""
    out: dict[str, str] = {}
    header, rows = _table(text, "stage A: tiny VLM")
    for label, cells in rows.items():
        if label.startswith("depth "):
            for b, cell in zip(header, cells):
                out[f"A d{label.split()[1]} @{_budget(b)}"] = cell
    no_zoom = re.fullmatch(r"([\d.]+)% \(chance ([\d.]+)%\)", rows["forced no-zoom"][0])
    out["A no-zoom"], out["A chance"] = no_zoom.groups()
    header, rows = _table(text, "stage B: proxy policy")
    for label, name in STAGE_B_ROWS.items():
        for h, cell in zip(header, rows[label]):
            out[f"B {name} turns@16" if h == "turns at 16" else f"B {name} @{_budget(h)}"] = cell
    seeds = re.search(r"Per seed, accuracy at budget 3 → 16: masked ([\d.]+) → ([\d.]+)\s+and ([\d.]+) → ([\d.]+),"
                      r"\s+plain ([\d.]+) → ([\d.]+)\s+and ([\d.]+) → ([\d.]+)\.", text)
    for i, value in enumerate(seeds.groups()):
        out[f"B seed{i // 2 % 2} {'masked' if i < 4 else 'plain'} @{(3, 16)[i % 2]}"] = value
    gains = re.search(r"plain GRPO learns to answer by the limit \(([\d.]+)\s+turns at budget 16\) and gains little "
                      r"past it \(\+([\d.]+) points from budget 3 to 16\), while\s+masked GRPO keeps zooming and gains "
                      r"\+([\d.]+),", text)
    out["B plain turns@16 (text)"], out["B plain gain 3->16"], out["B masked gain 3->16"] = gains.groups()
    return out


def run_numbers(metrics: dict) -> dict[str, str]:
    """The same numbers from a run's ``metrics.json``, printed as the README prints them."""
    pct = lambda a: f"{100 * a:.1f}"  # noqa: E731
    out: dict[str, str] = {}
    for depth, acc in metrics["vlm"]["accuracy_by_depth_and_budget"].items():
        if depth != "all":
            out.update({f"A {depth} @{b}": f"{100 * a:.0f}%" for b, a in acc.items()})
    out["A no-zoom"], out["A chance"] = pct(metrics["vlm"]["no_zoom_accuracy"]), pct(metrics["vlm"]["chance"])
    ev = metrics["eval"]
    for name in STAGE_B_ROWS.values():
        out.update({f"B {name} @{b}": pct(a) for b, a in ev[name]["accuracy_by_budget"].items()})
        out[f"B {name} turns@16"] = f"{ev[name]['mean_turns_by_budget']['16']:.2f}"
    for i, seed in enumerate(metrics["stage_b"]["per_seed"][:2]):
        for name in ("masked", "plain"):
            for b in ("3", "16"):
                out[f"B seed{i} {name} @{b}"] = pct(seed["eval"][name]["accuracy_by_budget"][b])
    out["B plain turns@16 (text)"] = out["B plain turns@16"]
    for name in ("plain", "masked"):
        acc = ev[name]["accuracy_by_budget"]
        out[f"B {name} gain 3->16"] = f"{100 * (acc['16'] - acc['3']):.1f}"
    return out


def mismatches(readme: dict[str, str], run: dict[str, str]) -> list[str]:
    return [f"{k}: README {v}, run {run.get(k)}" for k, v in readme.items() if run.get(k) != v]


def test_readme_numbers_are_all_found():
    numbers = readme_numbers(README.read_text())
    assert len([k for k in numbers if k.startswith("A d")]) == 18 and len([k for k in numbers if k.startswith("B ")]) >= 35


@pytest.mark.slow
def test_readme_demo_numbers_equal_a_fresh_default_run(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    readme = readme_numbers(README.read_text())
    assert not mismatches(readme, run_numbers(metrics))
    acc = {name: metrics["eval"][name]["accuracy_by_budget"]["16"] for name in STAGE_B_ROWS.values()}
    assert acc["masked"] > max(acc["sft"], acc["plain"])  # "ending above both the cold start and plain GRPO"


def test_readme_quotes_the_demo_numbers_of_docs_demo():
    """The README's stage B table is docs/demo.md's, row for row, and its headline sentence quotes it."""
    readme, doc = (ROOT / "README.md").read_text(), README.read_text()
    assert _table(readme, "stage B: proxy policy") == _table(doc, "stage B: proxy policy")
    _, rows = _table(doc, "stage B: proxy policy")
    at = lambda label, budget: rows[label][[1, 2, 3, 4, 5, 8, 16].index(budget)]  # noqa: E731
    quoted = re.search(r"\(([\d.]+) → ([\d.]+) from budget 3 to 16\)\s+while plain GRPO gains far less\s+"
                       r"\(([\d.]+) → ([\d.]+)\)", readme)
    assert quoted.groups() == (at("masked GRPO", 3), at("masked GRPO", 16), at("plain GRPO", 3), at("plain GRPO", 16))
