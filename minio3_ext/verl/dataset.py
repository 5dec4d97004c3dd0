"""Dataset rows (the released Mini-o3 row format: ``problem``, ``images``, ``solution``, ``data_source``, ``doc_id``)
→ rows of verl's ``RLHFDataset`` for the ``minio3_agent`` loop, and parquet files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from minio3_ext.core.dialect import get_dialect
from minio3_ext.core.images import ViewRules
from minio3_ext.data.convert import Problem
from minio3_ext.data import export
from minio3_ext.data.export import verl_rl_row

__all__ = ["to_verl_row", "write_parquet"]


def to_verl_row(
    row: Mapping[str, Any],
    index: int,
    *,
    dialect: str = "minio3",
    split: str = "train",
    agent_name: str = "minio3_agent",
    view: ViewRules = ViewRules(),
) -> dict[str, Any]:
    """One verl row from a problem row (layout: :mod:`minio3_ext.data.export`). The raw
    image path travels in ``tools_kwargs`` so that crops come from the raw file;
    ``images`` carries the pixel budget for the model's first view (the ``minio3_agent``
    loop computes that view with the core's rules, and replaces the row's system prompt
    with its dialect's, which names the tools enabled in the tool YAML)."""
    name = row.get("doc_id", index)
    for key in ("problem", "images", "solution", "data_source"):
        if key not in row:
            raise ValueError(f"row {name!r}: missing {key!r}")
    images = row["images"]
    if isinstance(images, (str, os.PathLike)) or len(images) != 1:
        raise ValueError(f"row {name!r}: 'images' must be a list with exactly one image path, got {images!r}")
    problem = Problem(
        doc_id=str(name), question=get_dialect(dialect).strip_slots(str(row["problem"])), answer=str(row["solution"]),
        image=os.path.abspath(os.fspath(images[0])), data_source=row["data_source"],
        benchmark=str(row.get("benchmark", row["data_source"])), difficulty=split,
    )
    return verl_rl_row(problem, index, dialect, agent_name, view)


def write_parquet(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike, **kwargs: Any) -> Path:
    """Convert ``rows`` with :func:`to_verl_row` and write them as one parquet file."""
    return export.write_parquet([to_verl_row(r, i, **kwargs) for i, r in enumerate(rows)], path)
