"""Trajectory records → multi-turn SFT conversations (cold-start data).

A trajectory becomes: system prompt, ``<image>`` + question, then each assistant turn
followed by its observation turn (``user`` in the minio3 dialect, ``tool`` in hermes),
with one image per observation. Observation images are the saved crops when the run
saved them, else they are recut from the raw original by replaying the recorded pixel
boxes and written to ``image_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ..core.dialect import get_dialect
from ..core.images import ImageBank, ViewRules, resize_for_model
from .report import _replay_crops
from .runner import safe_name

__all__ = ["trajectory_to_conversation", "write_sft_data", "SFTError"]


class SFTError(ValueError):
    """A trajectory that cannot become training data (message says why)."""


def trajectory_to_conversation(
    trajectory: Mapping[str, Any],
    image_dir: str | os.PathLike[str],
    bank: ImageBank | None = None,
) -> tuple[list[dict[str, str]], list[str]]:
    """``(messages, image paths)`` with string contents and ``<image>`` slots in order."""
    if trajectory.get("termination_reason") != "answered":
        raise SFTError(f"trajectory ended with {trajectory.get('termination_reason')!r}, not an answer")
    d = get_dialect(trajectory.get("dialect", "minio3"), coords=trajectory.get("coords", "relative"),
                    preset=trajectory.get("preset", "strict"), tools=tuple(trajectory.get("tools") or ("zoom",)))
    turns = trajectory.get("turns") or []
    messages = [{"role": "system", "content": d.system_prompt()},
                {"role": "user", "content": d.user_prompt(trajectory["question"])}]
    images = [str(trajectory["image"])]
    replayed: dict[int, Any] | None = None
    bank = bank or ImageBank()
    for turn in turns:
        messages.append({"role": "assistant", "content": turn["assistant"]})
        text = turn.get("observation_text")
        if text is None:
            continue
        index = turn.get("observation_index")
        if d.count_slots(text):
            if index is None:
                raise SFTError(f"turn {turn.get('turn')}: observation text has an image slot but no observation")
            path = turn.get("observation_image")
            if not path or not os.path.exists(path):
                if replayed is None:
                    replayed = _replay_crops(bank.get(trajectory["image"]), turns)
                crop = replayed.get(index)
                if crop is None:
                    raise SFTError(f"turn {turn.get('turn')}: observation {index} was not saved and cannot be recut")
                folder = Path(image_dir)
                folder.mkdir(parents=True, exist_ok=True)
                path = str(folder / f"{safe_name(str(trajectory['id']))}_s{trajectory.get('sample', 0)}_obs{index}.jpg")
                resize_for_model(crop, bank.view_rules).save(path, quality=90)
            images.append(str(path))
        messages.append({"role": d.observation_role, "content": text})
    return messages, images


def write_sft_data(records: list[Mapping[str, Any]], out_dir: str | os.PathLike[str], *,
                   only_correct: bool = True, view: ViewRules | None = None) -> dict[str, Any]:
    """Write ``sft.verl.parquet`` (verl MultiTurnSFTDataset), ``sft.trl/`` (TRL
    SFTTrainer dataset), ``sft.trl.jsonl`` and ``sft.report.json`` under ``out_dir``.
    ``view`` is the pixel budget of the RL rows (recut crops and the verl rows' per-image
    ``max_pixels``/``min_pixels``; default the recipe's). Returns the report: kept,
    not_correct, unusable (one line per trajectory, why)."""
    import json

    from ..core.images import ImageError
    from ..data.export import trl_sft_row, verl_sft_row, write_jsonl, write_parquet, write_trl_dataset

    out = Path(out_dir)
    view = view or ViewRules()
    bank = ImageBank(view_rules=view)
    verl_rows, trl_rows, unusable = [], [], []
    not_correct = 0
    for t in records:
        if only_correct and t.get("verdict") != 1:
            not_correct += 1
            continue
        try:
            messages, images = trajectory_to_conversation(t, out / "images", bank)
        except (SFTError, ImageError, KeyError) as e:
            unusable.append(f"{t.get('id')} sample {t.get('sample', 0)}: {e}")
            continue
        meta = {"id": str(t.get("id")), "sample": int(t.get("sample", 0)), "data_source": str(t.get("data_source", ""))}
        verl_rows.append(verl_sft_row(messages, images, view=view, **meta))
        trl_rows.append(trl_sft_row(messages, images, **meta))
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(verl_rows, out / "sft.verl.parquet")
    write_jsonl(trl_rows, out / "sft.trl.jsonl")
    if trl_rows:
        write_trl_dataset(trl_rows, out / "sft.trl")
    report = {"kept": len(verl_rows), "not_correct": not_correct, "unusable": unusable}
    (out / "sft.report.json").write_text(json.dumps(report, indent=1))
    return report
