"""Writers: canonical problems and SFT conversations → verl parquet, TRL datasets, JSONL.

**verl RL parquet** (what ``verl.utils.dataset.RLHFDataset`` and the minio3 agent loop read)::

    data_source, agent_name ("minio3_agent" by default),
    prompt: [{"role": "system", "content": <dialect system prompt>},
             {"role": "user", "content": "<image>\\n<question>"}],
    images: [{"image": "/abs/path", "max_pixels": 2000000, "min_pixels": 40000}],
    ability: "visual_search",
    reward_model: {"style": "model", "ground_truth": <answer>},
    extra_info: {"index", "doc_id", "split", "question", "answer", "benchmark", "difficulty",
                 "image_path", "need_tools_kwargs": True,
                 "tools_kwargs": {"zoom": {"create_kwargs": {"image": "/abs/path"}}}}

The zoom tool crops from ``extra_info.tools_kwargs.zoom.create_kwargs.image`` (the raw
file), never from the copy verl resized for the prompt; ``max_pixels``/``min_pixels``
make verl's first view match the episode's pixel budget.

**TRL dataset** (``datasets.save_to_disk`` folder for ``GRPOTrainer`` with the
minio3 zoom environment): the layout of :func:`minio3_ext.trl.data.grpo_rows` —
``prompt`` (hermes system prompt, empty user turn: the environment adds the first view
and the question on ``reset``), ``image_path``, ``question``, ``solution``, ``doc_id``,
``data_source`` — plus ``benchmark`` and ``difficulty``.

**SFT** (multi-turn, several images): verl's ``MultiTurnSFTDataset`` parquet with
``messages`` (string contents holding ``<image>`` slots) and ``images`` (``[{"image":
path, "max_pixels", "min_pixels"}]`` in slot order, the RL rows' pixel budget); and a TRL ``SFTTrainer`` dataset with ``messages`` whose
contents are part lists (``{"type": "image"}`` at each slot) and ``images``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..core import prompts
from ..core.chat import slot_blocks
from ..core.dialect import get_dialect
from ..core.images import ViewRules
from .convert import Problem

__all__ = [
    "verl_rl_row", "trl_rl_row", "write_jsonl", "write_parquet", "write_trl_dataset",
    "verl_sft_row", "trl_sft_row", "ABILITY",
]

ABILITY = "visual_search"
#: The verl agent loop the minio3 plugin registers.
DEFAULT_AGENT = "minio3_agent"


def verl_rl_row(problem: Problem, index: int, dialect: str = "minio3", agent_name: str | None = DEFAULT_AGENT,
                view: ViewRules = ViewRules()) -> dict[str, Any]:
    """Same layout as :func:`minio3_ext.verl.dataset.to_verl_row` (the verl adapter's)."""
    row = {
        "data_source": problem.data_source,
        "prompt": [{"role": "system", "content": prompts.system_prompt(dialect)},
                   {"role": "user", "content": prompts.user_prompt(problem.question)}],
        "images": [{"image": problem.image, "max_pixels": view.max_pixels, "min_pixels": view.min_pixels}],
        "ability": ABILITY,
        "reward_model": {"style": "model", "ground_truth": problem.answer},
        "extra_info": {
            "index": index, "doc_id": problem.doc_id, "split": problem.difficulty, "question": problem.question,
            "answer": problem.answer,
            "benchmark": problem.benchmark, "difficulty": problem.difficulty, "image_path": problem.image,
            "need_tools_kwargs": True, "tools_kwargs": {"zoom": {"create_kwargs": {"image": problem.image}}},
        },
    }
    if agent_name:
        row["agent_name"] = agent_name
    return row


def trl_rl_row(problem: Problem) -> dict[str, Any]:
    """Same layout as :func:`minio3_ext.trl.data.grpo_rows` (TRL's tool loop speaks the
    hermes dialect; the zoom environment adds the image and question on ``reset``)."""
    return {
        "doc_id": problem.doc_id, "solution": problem.answer, "data_source": problem.data_source,
        "prompt": [{"role": "system", "content": prompts.system_prompt("hermes")}, {"role": "user", "content": ""}],
        "image_path": problem.image, "question": problem.question,
        "benchmark": problem.benchmark, "difficulty": problem.difficulty,
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
    """``datasets.save_to_disk`` folder; an ``images`` column becomes a list of
    ``datasets.Image`` (decoded to PIL on access)."""
    import datasets

    ds = datasets.Dataset.from_list([dict(r) for r in rows])
    if "images" in ds.column_names:
        ds = ds.cast_column("images", datasets.List(datasets.Image()))
    out = Path(folder)
    ds.save_to_disk(str(out))
    return out


def _slots(text: str) -> int:
    return get_dialect().count_slots(text)


def verl_sft_row(messages: Sequence[Mapping[str, Any]], images: Sequence[str], *, view: ViewRules = ViewRules(),
                 **extra: Any) -> dict[str, Any]:
    """One verl SFT row; ``messages`` contents are strings with ``<image>`` slots.

    Every image carries the pixel budget of the RL rows (``max_pixels``/``min_pixels``,
    what verl's ``process_image`` reads): the first one is the raw original, which verl
    would otherwise resize to qwen-vl-utils' 12.8M-pixel default (~6.5x the tokens the
    policy sees in RL and evaluation)."""
    n = sum(_slots(m["content"]) for m in messages)
    if n != len(images):
        raise ValueError(f"conversation has {n} <image> slots but {len(images)} images")
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "images": [{"image": p, "max_pixels": view.max_pixels, "min_pixels": view.min_pixels} for p in images],
            **extra}


def trl_sft_row(messages: Sequence[Mapping[str, Any]], images: Sequence[str], **extra: Any) -> dict[str, Any]:
    """One TRL SFT row: contents as part lists, ``{"type": "image"}`` at each slot."""
    out = [{"role": m["role"], "content": slot_blocks(get_dialect(), m["content"])} for m in messages]
    n = sum(p["type"] == "image" for m in out for p in m["content"])
    if n != len(images):
        raise ValueError(f"conversation has {n} image slots but {len(images)} images")
    return {"messages": out, "images": list(images), **extra}
