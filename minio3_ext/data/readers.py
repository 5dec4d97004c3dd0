"""Read benchmark rows from local files: JSONL, JSON, parquet, TSV, or a local
Hugging Face ``datasets`` folder (``save_to_disk`` output or a downloaded repo).

Rows come back as plain dicts with a ``_source`` key (``file:line``) for error
messages. Nothing is downloaded.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

__all__ = ["read_rows", "read_jsonl", "DATA_SUFFIXES"]

DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".tsv")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """JSON objects of a JSONL file, each with ``_source`` = ``file:line``; blank lines skipped."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield {**row, "_source": f"{path}:{lineno}"}


def _json(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict):  # {"data": [...]} / {"test": [...]} or a single id → row mapping
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            data = lists[0]
        elif all(isinstance(v, dict) for v in data.values()):
            data = [{"id": k, **v} for k, v in data.items()]
        else:
            raise ValueError(f"{path}: expected a list of rows (or an object holding one list)")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of rows, got {type(data).__name__}")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise ValueError(f"{path}[{i}]: expected a JSON object, got {type(row).__name__}")
        yield {**row, "_source": f"{path}[{i}]"}


def _parquet(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    i = 0
    for batch in table.iter_batches(batch_size=256):
        for row in batch.to_pylist():
            yield {**row, "_source": f"{path}[{i}]"}
            i += 1


def _tsv(path: Path) -> Iterator[dict[str, Any]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # HR-Bench stores base64 images in cells
    with open(path, encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.DictReader(f, delimiter="\t")):
            yield {**row, "_source": f"{path}:{i + 2}"}


def _hf_folder(path: Path) -> Iterator[dict[str, Any]]:
    import datasets

    ds = datasets.load_from_disk(str(path))
    splits = ds.items() if isinstance(ds, datasets.DatasetDict) else [("", ds)]
    for split, part in splits:
        for i, row in enumerate(part):
            yield {**row, "_source": f"{path}{'/' + split if split else ''}[{i}]"}


_READERS = {".jsonl": read_jsonl, ".json": _json, ".parquet": _parquet, ".tsv": _tsv}


def read_rows(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the rows of ``path`` (a file, a ``save_to_disk`` folder, or a folder of data files)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    if p.is_dir():
        if (p / "dataset_dict.json").exists() or (p / "state.json").exists():
            yield from _hf_folder(p)
            return
        files = sorted(f for f in p.rglob("*") if f.suffix in _READERS and f.name not in
                       ("dataset_info.json", "state.json", "dataset_dict.json") and not f.name.startswith("."))
        if not files:
            raise ValueError(f"{p}: folder holds no data files ({', '.join(DATA_SUFFIXES)})")
        for f in files:
            yield from _READERS[f.suffix](f)
        return
    reader = _READERS.get(p.suffix)
    if reader is None:
        raise ValueError(f"{p}: unknown data file type {p.suffix!r}; expected one of {DATA_SUFFIXES}")
    yield from reader(p)
