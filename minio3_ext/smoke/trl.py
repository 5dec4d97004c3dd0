"""``minio3 smoke trl``: the shipped TRL recipe scripts, run for real for a step or two on CPU.

Both scripts run as subprocesses the way a user runs them on one machine
(``python recipes/trl/X.py --config recipes/trl/X.yaml --flag value ...``), on the tiny
offline Qwen2.5-VL (:mod:`minio3_ext.testing`) and ``minio3 synth`` rows (the same 8 for both stages):

1. ``sft_coldstart_qwen2_5_vl_7b.py`` with its YAML: TRL's ``SFTTrainer`` and the
   package's collator on oracle zoom conversations (:func:`minio3_ext.trl.oracle_conversation`),
   stored as a ``datasets`` folder like ``minio3 data sft`` writes;
2. ``grpo_qwen2_5_vl_7b.py`` with its YAML, from the SFT checkpoint (as the recipe says):
   ``MaskedGRPOTrainer``, ``ZoomEnvironment`` and the recipe's ``AccuracyReward`` with the
   rule judge (no ``MINIO3_JUDGE_*`` endpoint). Generation is real: TRL's own transformers
   generation path (``--use_vllm false``: no vLLM on CPU).

Every flag added to the YAML is in :data:`SFT_OVERRIDES` / :data:`GRPO_OVERRIDES`, each
with its reason: sizes, paths, and the CPU switches (fp32, sdpa, no vLLM, no bf16). The
metrics come from the trainers' own log (``output_dir/trainer_state.json``'s
``log_history``, which the recipes write with ``trainer.save_state()``), and
``weights_changed`` from a checksum of the saved weights before and after GRPO.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["run", "SFT_OVERRIDES", "GRPO_OVERRIDES", "ROWS", "VIEW_MAX_PIXELS", "VIEW_MIN_PIXELS"]

#: Synthetic rows (``minio3 synth``) and their image size; both stages train on them.
ROWS = 8
IMAGE_SIZE = (640, 480)
#: The tiny model's view budget (48 and 8 merged 28-px patches): a few dozen image tokens per view.
VIEW_MAX_PIXELS = 28 * 28 * 48
VIEW_MIN_PIXELS = 28 * 28 * 8

_CPU = [
    # no GPU: TrainingArguments' CPU switch
    "--use_cpu", "true",
    # CPU training in fp32 (bf16 weights would also round a 1e-6 update away)
    "--bf16", "false", "--dtype", "float32",
    # flash-attention is CUDA-only
    "--attn_implementation", "sdpa",
    # nothing to report to; the metrics are read from trainer_state.json
    "--report_to", "none",
    "--disable_tqdm", "true",
]

#: Flags added to ``sft_coldstart_qwen2_5_vl_7b.yaml`` (besides paths).
SFT_OVERRIDES = [
    *_CPU,
    # the smoke's conversations are Hermes tool calls: render the zoom schema as the GRPO prompts carry it
    "--tool_schemas", "true",
    # size: 400 optimizer steps of 2 conversations (~2 min here), not 1-2: from random weights the model
    # needs them to answer at all; with fewer, every GRPO reward is 0, every advantage 0, and the GRPO
    # step leaves the weights unchanged (the smoke then fails, saying so)
    "--max_steps", "400", "--gradient_accumulation_steps", "1", "--per_device_train_batch_size", "2",
    # size: the tiny model's context (a trajectory with the <tools> block is ~650 tokens)
    "--max_length", "2048",
    # size: a random-init 0.3M-parameter model needs a larger step than a 7B fine-tune to move at all
    "--learning_rate", "3e-3", "--warmup_ratio", "0.0",
    # size: recompute is pointless at this size
    "--gradient_checkpointing", "false",
    # log every step; save once at the end (save_model)
    "--logging_steps", "1", "--save_strategy", "no",
]

#: Flags added to ``grpo_qwen2_5_vl_7b.yaml`` (besides paths).
GRPO_OVERRIDES = [
    *_CPU,
    # no vLLM on CPU: TRL's own transformers generation (model.generate), real sampling
    "--use_vllm", "false",
    # size: the 8 rows x 4 rollouts per step, 2 optimizer steps, one generation per step (16 groups in all:
    # enough that some group mixes right answers and misses, so some advantage is non-zero)
    "--num_generations", "4", "--per_device_train_batch_size", "32", "--gradient_accumulation_steps", "1",
    "--steps_per_generation", "1", "--max_steps", "2",
    # size: the tiny model's completion budget (tool results included)
    "--max_completion_length", "256",
    # size: 2 turns (one zoom, then the answer), as in the SFT conversations
    "--max_turns", "2",
    # size: pixels of the tiny model's views
    "--image_bank_gib", "0.25",
    "--gradient_checkpointing", "false",
    "--logging_steps", "1", "--save_strategy", "no",
]


class SmokeError(RuntimeError):
    """A stage of the smoke failed; the message names it and its log file."""


def recipes_dir() -> Path:
    """``recipes/trl`` of the checkout this package is imported from."""
    here = Path(__file__).resolve().parents[2] / "recipes" / "trl"
    if not (here / "grpo_qwen2_5_vl_7b.py").is_file():
        raise SmokeError(f"recipes/trl not found next to the package ({here}): run the smoke from a source checkout")
    return here


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_recipe(name: str, script: Path, config: Path, flags: list[str], log: Path) -> dict[str, float]:
    cmd = [sys.executable, str(script), "--config", str(config), *flags]
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cpu, wall = _children_cpu_seconds(), time.perf_counter()
    with open(log, "w") as f:
        f.write(" ".join(cmd) + "\n\n")
        f.flush()
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=str(log.parent))
    times = {"wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(_children_cpu_seconds() - cpu, 1)}
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise SmokeError(f"{name} ({script.name}) exited {done.returncode}: {tail[0]} (full log: {log})")
    return times


def _log_history(output_dir: Path, name: str) -> list[dict[str, Any]]:
    path = output_dir / "trainer_state.json"
    if not path.is_file():
        raise SmokeError(f"{name}: {path} was not written")
    return json.loads(path.read_text())["log_history"]


def checksum(model_dir: Path) -> dict[str, Any]:
    """sha256 over the saved tensors (sorted by name), and one digest per tensor."""
    from safetensors.torch import load_file

    tensors: dict[str, Any] = {}
    for f in sorted(model_dir.glob("*.safetensors")):
        tensors.update(load_file(str(f)))
    if not tensors:
        raise SmokeError(f"no *.safetensors in {model_dir}")
    total, each = hashlib.sha256(), {}
    for key in sorted(tensors):
        data = tensors[key].contiguous().view(-1).view(dtype=__import__("torch").uint8).numpy().tobytes()
        each[key] = hashlib.sha256(data).hexdigest()
        total.update(key.encode() + b"\0" + data)
    return {"sha256": total.hexdigest(), "tensors": each}


def _prepare(out: Path) -> tuple[Path, Path, Path]:
    from datasets import Dataset

    from ..core import EpisodeConfig, ImageBank, ViewRules
    from ..data.synthetic import generate, load_rows
    from ..testing import save_tiny_qwen
    from ..trl import oracle_conversation

    model_dir = save_tiny_qwen(out / "model", seed=0)
    rows_jsonl = generate(out / "data", ROWS, seed=0, width=IMAGE_SIZE[0], height=IMAGE_SIZE[1])
    rows = load_rows(rows_jsonl)
    view = ViewRules(max_pixels=VIEW_MAX_PIXELS, min_pixels=VIEW_MIN_PIXELS)
    config = EpisodeConfig(max_turns=2, dialect="hermes", max_context_tokens=None, view=view)
    bank = ImageBank(view_rules=view)
    sft_dir = out / "data" / "sft.trl"
    Dataset.from_list([oracle_conversation(r, config, bank) for r in rows]).save_to_disk(str(sft_dir))
    return model_dir, sft_dir, rows_jsonl


def run(out_dir: Path) -> dict[str, Any]:
    """SFT then GRPO through the recipe scripts into ``out_dir``; writes and returns ``metrics.json``'s content."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recipes = recipes_dir()
    wall, cpu = time.perf_counter(), _children_cpu_seconds() + _own_cpu_seconds()
    model_dir, sft_data, grpo_data = _prepare(out)
    view = ["--view_max_pixels", str(VIEW_MAX_PIXELS), "--view_min_pixels", str(VIEW_MIN_PIXELS)]

    sft_out = out / "sft"
    sft_times = _run_recipe("SFT", recipes / "sft_coldstart_qwen2_5_vl_7b.py", recipes / "sft_coldstart_qwen2_5_vl_7b.yaml",
                            ["--model_name_or_path", str(model_dir), "--dataset_path", str(sft_data),
                             "--output_dir", str(sft_out), *view, *SFT_OVERRIDES], out / "sft.log")
    sft_log = _log_history(sft_out, "SFT")

    grpo_out = out / "grpo"
    before = checksum(sft_out)
    rl_times = _run_recipe("GRPO", recipes / "grpo_qwen2_5_vl_7b.py", recipes / "grpo_qwen2_5_vl_7b.yaml",
                           ["--model_name_or_path", str(sft_out), "--train_data", str(grpo_data),
                            "--output_dir", str(grpo_out), *view, *GRPO_OVERRIDES], out / "grpo.log")
    rl_log = _log_history(grpo_out, "GRPO")
    after = checksum(grpo_out)
    changed = sorted(k for k in before["tensors"] if after["tensors"].get(k) != before["tensors"][k])
    steps = [h for h in rl_log if "loss" in h]
    metrics = {
        "trl.sft.steps": max((h.get("step", 0) for h in sft_log), default=0),
        "trl.sft.log_history": sft_log,
        "trl.rl.steps": max((h.get("step", 0) for h in rl_log), default=0),
        "trl.rl.metrics": steps[-1] if steps else {},
        "trl.rl.log_history": rl_log,
        "trl.rl.weights_changed": before["sha256"] != after["sha256"],
        "trl.rl.checksum": {"before": before["sha256"], "after": after["sha256"], "tensors_changed": len(changed),
                            "tensors": len(before["tensors"]),
                            "vision_tensors_changed": sum(k.startswith(("model.visual.", "visual.")) for k in changed)},
        "trl.overrides": {"sft": SFT_OVERRIDES, "grpo": GRPO_OVERRIDES},
        "trl.times": {"sft": sft_times, "rl": rl_times, "total_wall_s": round(time.perf_counter() - wall, 1),
                      "total_cpu_s": round(_children_cpu_seconds() + _own_cpu_seconds() - cpu, 1)},
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    return metrics


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
