"""``minio3 data convert``: benchmark files → validated rows in every output format.

Every bad row is reported by id with its reason: skipped by default, or the whole run
fails without writing anything (``strict``). Nothing is silently dropped: the report
(``<name>.report.json``) lists each one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .convert import SPLITS, ConvertContext, Problem, RowError, convert_row
from .export import trl_rl_row, verl_rl_row, write_jsonl, write_parquet, write_trl_dataset
from .readers import read_rows

__all__ = ["BadRow", "PrepareReport", "PrepareError", "prepare", "FORMATS"]

FORMATS = ("jsonl", "verl", "trl")


@dataclass
class BadRow:
    id: str
    where: str
    reason: str


@dataclass
class PrepareReport:
    benchmark: str
    split: str
    kept: int = 0
    bad: list[BadRow] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bad_count": len(self.bad)}


class PrepareError(ValueError):
    """Strict mode found bad rows; ``report`` lists them."""

    def __init__(self, report: PrepareReport):
        self.report = report
        lines = [f"  {b.id} ({b.where}): {b.reason}" for b in report.bad[:20]]
        more = f"\n  … and {len(report.bad) - 20} more" if len(report.bad) > 20 else ""
        super().__init__(f"{len(report.bad)} bad row(s), nothing written (--strict):\n" + "\n".join(lines) + more)


def _row_id(row: dict[str, Any], index: int) -> str:
    extra = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
    for value in (row.get("doc_id"), row.get("question_id"), row.get("index"), row.get("id"), extra.get("index")):
        if value is not None:
            return str(value)
    return f"#{index}"


#: Benchmarks whose split a file's name must state (or ``--split``): no default is safe.
_NAMED_SPLITS = {"hrbench": re.compile(r"(?<![0-9a-z])([48])k(?![a-z])", re.IGNORECASE)}


def _split_of(benchmark: str, inputs: Sequence[str | os.PathLike[str]], split: str | None) -> str:
    """The split: ``split`` when given, else the first of the benchmark's; for HR-Bench the
    one its file names state (``hr_bench_8k.tsv``), which a given ``split`` must agree with."""
    pattern = _NAMED_SPLITS.get(benchmark)
    if pattern is None:
        return split or SPLITS[benchmark][0]
    named = {f"{m.group(1)}k".lower() for path in inputs for m in pattern.finditer(Path(path).name)}
    if split is None:
        if len(named) != 1:
            why = "both 4k and 8k" if len(named) > 1 else "neither 4k nor 8k"
            raise ValueError(f"{benchmark}: the file names ({', '.join(Path(p).name for p in inputs)}) say {why}; "
                             f"pass --split {' or --split '.join(SPLITS[benchmark])}")
        return named.pop()
    if named and named != {split}:
        raise ValueError(f"{benchmark}: --split {split}, but the file names say {'/'.join(sorted(named))} "
                         f"({', '.join(Path(p).name for p in inputs)})")
    return split


def prepare(
    benchmark: str,
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    split: str | None = None,
    image_root: str | os.PathLike[str] | None = None,
    strict: bool = False,
    formats: Iterable[str] = FORMATS,
    dialect: str = "minio3",
    agent_name: str | None = "minio3_agent",
    decode: bool = True,
    limit: int | None = None,
    name: str | None = None,
    allow_outside_root: bool = False,
) -> PrepareReport:
    if benchmark not in SPLITS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {sorted(SPLITS)}")
    split = _split_of(benchmark, inputs, split)
    if split not in SPLITS[benchmark]:
        raise ValueError(f"{benchmark}: unknown split {split!r}; expected one of {SPLITS[benchmark]}")
    formats = tuple(formats)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown format(s) {sorted(unknown)}; expected from {FORMATS}")
    if "trl" in formats:
        if importlib.util.find_spec("datasets") is None:
            raise ValueError("the 'trl' format needs the `datasets` package: pip install 'minio3-ext[trl]'")
    out = Path(out_dir)
    name = name or f"{benchmark}_{split}"
    report = PrepareReport(benchmark, split)
    problems: list[Problem] = []
    seen: set[str] = set()
    index = 0
    for path in inputs:
        root = Path(image_root) if image_root else (Path(path) if Path(path).is_dir() else Path(path).parent)
        ctx = ConvertContext(benchmark, split, root.resolve(), out / "images" / name, allow_outside_root)
        for row in read_rows(path):
            where = row.pop("_source", str(path))
            row_id = _row_id(row, index)
            try:
                problem = convert_row(row, index, ctx, decode=decode)
                if problem.doc_id in seen:
                    raise RowError(f"duplicate id {problem.doc_id!r}")
            except RowError as e:
                report.bad.append(BadRow(row_id, where, str(e)))
            else:
                seen.add(problem.doc_id)
                problems.append(problem)
            index += 1
            if limit is not None and index >= limit:
                break
    report.kept = len(problems)
    if strict and report.bad:
        raise PrepareError(report)
    if "jsonl" in formats:
        report.outputs["jsonl"] = str(write_jsonl((p.row() for p in problems), out / f"{name}.jsonl"))
    if "verl" in formats:
        rows = [verl_rl_row(p, i, dialect, agent_name) for i, p in enumerate(problems)]
        report.outputs["verl"] = str(write_parquet(rows, out / f"{name}.verl.parquet"))
    if "trl" in formats:
        report.outputs["trl"] = str(write_trl_dataset([trl_rl_row(p) for p in problems], out / f"{name}.trl"))
    report_path = out / f"{name}.report.json"
    report.outputs["report"] = str(report_path)
    out.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report.to_dict(), indent=1))
    return report
