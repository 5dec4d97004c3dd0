"""Writers: canonical problems and SFT conversations → verl parquet, TRL datasets, JSONL.

**verl RL parquet** (what ``verl.utils.dataset.RLHFDataset`` and the minio3 agent loop read)::

    data_source, agent_name (optional),
    prompt: [{"role": "system", "content": <dialect system prompt>},
             {"role": "user", "content": "<image>\\n<question>"}],
    images: [{"image": "/abs/path"}],
    ability: "visual_search",
    reward_model: {"style": "model", "ground_truth": <answer>},
    extra_info: {"index", "doc_id", "question", "answer", "benchmark", "difficulty",
                 "image_path", "need_tools_kwargs": True,
                 "tools_kwargs": {"zoom": {"create_kwargs": {"image": "/abs/path"}}}}

The zoom tool crops from ``extra_info.tools_kwargs.zoom.create_kwargs.image`` (the raw
file), never from the copy verl resized for the prompt.

**TRL dataset** (``datasets.save_to_disk`` folder for ``GRPOTrainer``): ``prompt``
(conversational, text only: TRL inserts the image into the first user turn),
``images`` (a list with the one image), ``solution``, ``image_path``, ``doc_id``,
``data_source``, ``benchmark``, ``difficulty``.

**SFT** (multi-turn, several images): verl's ``MultiTurnSFTDataset`` parquet with
``messages`` (string contents holding ``<image>`` slots) and ``images`` (``[{"image":
path}]`` in slot order); and a TRL ``SFTTrainer`` dataset with ``messages`` whose
contents are part lists (``{"type": "image"}`` at each slot) and ``images``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..core import prompts
from .convert import Problem

__all__ = [
    "verl_rl_row", "trl_rl_row", "write_jsonl", "write_parquet", "write_trl_dataset",
    "verl_sft_row", "trl_sft_row", "ABILITY",
]

ABILITY = "visual_search"


def verl_rl_row(problem: Problem, index: int, dialect: str = "minio3", agent_name: str | None = None) -> dict[str, Any]:
    row = {
        "data_source": problem.data_source,
        "prompt": [{"role": "system", "content": prompts.system_prompt(dialect)},
                   {"role": "user", "content": prompts.user_prompt(problem.question)}],
        "images": [{"image": problem.image}],
        "ability": ABILITY,
        "reward_model": {"style": "model", "ground_truth": problem.answer},
        "extra_info": {
            "index": index, "doc_id": problem.doc_id, "question": problem.question, "answer": problem.answer,
            "benchmark": problem.benchmark, "difficulty": problem.difficulty, "image_path": problem.image,
            "need_tools_kwargs": True, "tools_kwargs": {"zoom": {"create_kwargs": {"image": problem.image}}},
        },
    }
    if agent_name:
        row["agent_name"] = agent_name
    return row


def trl_rl_row(problem: Problem, dialect: str = "minio3") -> dict[str, Any]:
    return {
        "prompt": [{"role": "system", "content": prompts.system_prompt(dialect)},
                   {"role": "user", "content": problem.question}],
        "images": [problem.image], "solution": problem.answer, "image_path": problem.image,
        "doc_id": problem.doc_id, "data_source": problem.data_source, "benchmark": problem.benchmark,
        "difficulty": problem.difficulty,
    }


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    return out


def write_parquet(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    pq.write_table(pa.Table.from_pylist(list(rows)), tmp)
    os.replace(tmp, out)
    return out


def write_trl_dataset(rows: Sequence[Mapping[str, Any]], folder: str | os.PathLike[str]) -> Path:
    """``datasets.save_to_disk`` folder; ``images`` is a list of ``datasets.Image``
    (stored as paths, decoded lazily)."""
    import datasets

    ds = datasets.Dataset.from_list([dict(r) for r in rows])
    ds = ds.cast_column("images", datasets.List(datasets.Image()))
    out = Path(folder)
    ds.save_to_disk(str(out))
    return out


def _slots(text: str) -> int:
    return text.count("<image>")


def verl_sft_row(messages: Sequence[Mapping[str, Any]], images: Sequence[str], **extra: Any) -> dict[str, Any]:
    """One verl SFT row; ``messages`` contents are strings with ``<image>`` slots."""
    n = sum(_slots(m["content"]) for m in messages)
    if n != len(images):
        raise ValueError(f"conversation has {n} <image> slots but {len(images)} images")
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "images": [{"image": p} for p in images], **extra}


def trl_sft_row(messages: Sequence[Mapping[str, Any]], images: Sequence[str], **extra: Any) -> dict[str, Any]:
    """One TRL SFT row: contents as part lists, ``{"type": "image"}`` at each slot."""
    out = []
    for m in messages:
        parts: list[dict[str, Any]] = []
        for i, piece in enumerate(m["content"].split("<image>")):
            if i:
                parts.append({"type": "image", "text": None})
            if piece:
                parts.append({"type": "text", "text": piece})
        out.append({"role": m["role"], "content": parts})
    n = sum(p["type"] == "image" for m in out for p in m["content"])
    if n != len(images):
        raise ValueError(f"conversation has {n} image slots but {len(images)} images")
    return {"messages": out, "images": list(images), **extra}
