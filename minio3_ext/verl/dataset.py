"""Dataset rows (SPEC 5: ``problem``, ``images``, ``solution``, ``data_source``, ``doc_id``)
→ rows of verl's ``RLHFDataset`` for the ``minio3_agent`` loop, and parquet files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from minio3_ext.core import prompts
from minio3_ext.core.images import ViewRules

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
    """One verl row. The raw image path travels in ``tools_kwargs`` so that crops come
    from the raw file; ``images`` carries the pixel budget for the model's first view."""
    name = row.get("doc_id", index)
    for key in ("problem", "images", "solution", "data_source"):
        if key not in row:
            raise ValueError(f"row {name!r}: missing {key!r}")
    images = row["images"]
    if isinstance(images, (str, os.PathLike)) or len(images) != 1:
        raise ValueError(f"row {name!r}: 'images' must be a list with exactly one image path, got {images!r}")
    path = os.path.abspath(os.fspath(images[0]))
    question = str(row["problem"]).replace("<image>", "").strip()
    return {
        "data_source": row["data_source"],
        "prompt": [
            {"role": "system", "content": prompts.system_prompt(dialect)},
            {"role": "user", "content": prompts.user_prompt(str(row["problem"]))},
        ],
        "images": [{"image": path, "max_pixels": view.max_pixels, "min_pixels": view.min_pixels}],
        "ability": "visual_search",
        "agent_name": agent_name,
        "reward_model": {"style": "model", "ground_truth": str(row["solution"])},
        "extra_info": {
            "index": index,
            "doc_id": str(name),
            "split": split,
            "question": question,
            "need_tools_kwargs": True,
            "tools_kwargs": {"zoom": {"create_kwargs": {"image": path}}},
        },
    }


def write_parquet(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike, **kwargs: Any) -> Path:
    """Convert ``rows`` with :func:`to_verl_row` and write them as one parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([to_verl_row(r, i, **kwargs) for i, r in enumerate(rows)])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path
