"""``python -m bench --quick`` runs and prints its table (the image-bank rows here)."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_ROW = re.compile(r"^\| (?P<what>P[^|]*?) +\| (?P<value>[^|]+?) +\| (?P<base>[^|]+?) +\| (?P<ratio>[\d.]+)x +\| "
                  r"(?P<goal>[^|]+?) +\| (?P<ok>yes|NO) +\|$")


@pytest.fixture(scope="module")
def image_bank_table() -> tuple[int, str, dict[str, re.Match]]:
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "image_bank"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    rows = {m["what"]: m for m in map(_ROW.match, proc.stdout.splitlines()) if m}
    return proc.returncode, proc.stdout + proc.stderr, rows


def test_table_has_every_image_bank_row(image_bank_table):
    rc, output, rows = image_bank_table
    assert rc in (0, 1), output
    assert "| what " in output and "| baseline " in output, output
    assert sorted(name.split()[0] for name in rows) == ["P1", "P1", "P2", "P2", "P2b", "P2b", "P2b"], output


def test_memory_and_counts_meet_their_goals(image_bank_table):
    """Peak RSS and decode/resize counts do not depend on machine load: they must pass."""
    _, output, rows = image_bank_table
    for name, row in rows.items():
        if name.startswith(("P1", "P2b decodes", "P2b first-view resizes")):
            assert row["ok"] == "yes", output
    decodes = next(r for n, r in rows.items() if n.startswith("P2b decodes"))
    assert decodes["value"].strip() == "1 calls" and decodes["base"].strip() == "16 calls"


def test_first_view_time_is_shared(image_bank_table):
    """Wall time, so load-sensitive: the goal is 1.5/16, a bank that decodes per rollout shows ~1x."""
    _, output, rows = image_bank_table
    row = next(r for n, r in rows.items() if n.startswith("P2b first-view time"))
    assert float(row["ratio"]) <= 0.3, output


def test_zoom_call_overhead_is_bounded(image_bank_table):
    """P2 compares CPU times; the goal is 1.15x, a regression shows well above 1.5x even on a busy CI box."""
    _, output, rows = image_bank_table
    p2 = [r for n, r in rows.items() if n.startswith("P2 ")]
    assert len(p2) == 2, output
    for row in p2:
        assert float(row["ratio"]) <= 1.5, output


def test_unknown_benchmark_is_named():
    proc = subprocess.run([sys.executable, "-m", "bench", "--only", "nope"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown benchmark(s) ['nope']" in proc.stderr and "image_bank" in proc.stderr


def test_every_listed_benchmark_imports_and_has_run(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from bench.__main__ import BENCHMARKS

    assert {"bench.image_bank", "bench.masked_grpo", "bench.judge"} <= set(BENCHMARKS)
    for name in BENCHMARKS:
        module = importlib.import_module(name)
        assert list(inspect.signature(module.run).parameters) == ["quick"], name


def test_trl_memory_model_matches_the_readme_rows():
    """Issue 21: the TRL memory rows of docs/bench.md are the model bench/trl_memory.py prints, labelled as a model;
    the tool loop's pixels are on the GPU while vLLM generates (no '0 GiB' claim)."""
    from bench import trl_memory

    rows = trl_memory.run(quick=True)
    assert all(r.name.startswith("TRL model:") and r.detail.startswith("model.") for r in rows)
    pixels, peak, paper, _ = rows
    readme = (ROOT / "docs" / "bench.md").read_text()
    assert f"| {pixels.value:.3g} GiB | {pixels.baseline:.3g} GiB |" in readme and pixels.value > 8
    assert f"| {peak.value:.3g} GB | {peak.baseline:.3g} GB |" in readme and peak.ok
    assert f"| {paper.value:.0f} GB | {paper.baseline:.0f} GB |" in readme and paper.value > 80
    assert all("0 GiB" not in p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
