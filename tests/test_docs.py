"""The README stays a front page: its links to docs/ and CONTRIBUTING.md resolve (anchors
included), every doc under docs/ is linked from it, and its headline bench figures are the
rows of docs/bench.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"(?m)^#+ (.+)$", text)}


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"\w+://", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists() or (anchor and anchor not in _anchors(file.read_text())):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken


def test_readme_links_every_doc():
    readme = (ROOT / "README.md").read_text()
    assert [p.name for p in (ROOT / "docs").glob("*.md") if f"](docs/{p.name})" not in readme] == []


def test_readme_bench_figures_are_rows_of_docs_bench():
    readme = (ROOT / "README.md").read_text()
    (sentence,) = re.findall(r"- `python -m bench`: (.*?)\n\n", readme, re.S)
    rows = [line for line in (ROOT / "docs" / "bench.md").read_text().splitlines() if line.startswith("| ")]
    checks = [("P1 peak RSS", "102 MB", "101 MB"), ("4096×16 |", "37.6 ms", "42.1 ms"), ("judge calls", "474", "3878")]
    for row_start, value, baseline in checks:
        (row,) = [r for r in rows if row_start in r and "vs verl `grpo`," not in r]
        assert f"| {value} | {baseline} |" in row, row
        assert value in sentence and baseline in sentence
