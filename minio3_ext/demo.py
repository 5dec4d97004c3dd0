"""The CPU main job: synthetic data → tiny Qwen2.5-VL → cold-start SFT → masked GRPO → eval → report.

``minio3 demo`` runs every stage of the Mini-o3 recipe end to end on a laptop CPU in a
few minutes, with no network:

1. **synthesise** a small visual-search set (:mod:`minio3_ext.data.synthetic`), small
   images and a small pixel budget so the tiny model trains fast;
2. **build** an offline random-weight Qwen2.5-VL (:mod:`minio3_ext.testing`);
3. **cold-start SFT** with TRL's ``SFTTrainer`` on oracle multi-turn trajectories (zoom
   onto the known target box, read the crop, answer; :func:`minio3_ext.trl.oracle_conversation`);
4. **masked GRPO** with :class:`~minio3_ext.trl.MaskedGRPOTrainer` and the zoom
   environment, real sampling, rule-path judge reward;
5. **evaluate** at turn budgets 1, 2, 4, 8 with the episode runner
   (:mod:`minio3_ext.eval.runner`), each item sampled once at the largest budget and
   the smaller budgets read off as prefixes;
6. **report** into the run folder: ``metrics.json``, ``accuracy_vs_budget.png`` and
   ``trajectories.html`` (boxes drawn on the original, every crop).

The tiny model has a few hundred thousand random parameters: the numbers show the
machinery working (format learnt, masking statistics, budgets), not the paper's accuracy.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

__all__ = ["DemoConfig", "run_demo", "QUICK"]


@dataclass(frozen=True)
class DemoConfig:
    """Every knob of the demo; the defaults are the full run (≤ 5 minutes on 2 CPU cores)."""

    seed: int = 0
    system_prompt: str = ("Answer the question about the image. Think inside <think></think>, zoom in with the zoom "
                          "tool when the target is too small, and give the final answer inside <answer></answer>.")
    """Shorter than the library's (the tool schema already describes zoom): fewer tokens per CPU step."""
    train_items: int = 6
    eval_items: int = 6
    image_width: int = 448
    image_height: int = 336
    view_max_pixels: int = 28 * 28 * 48
    """Pixel budget of every image the model sees (first view and crops)."""
    view_min_pixels: int = 28 * 28 * 8
    sft_epochs: int = 30
    sft_learning_rate: float = 1e-2
    sft_batch_size: int = 2
    oracle_grid: float = 0.1
    """Oracle zoom boxes are rounded outwards to this grid: short tool calls a tiny model can learn."""
    grpo_steps: int = 8
    grpo_learning_rate: float = 1e-4
    grpo_prompts_per_step: int = 2
    format_reward_weight: float = 0.5
    """Weight of the format reward next to accuracy (0 = released recipe). A tiny model rarely
    answers right, so without it most groups have zero reward variance and no gradient."""
    num_generations: int = 4
    train_max_turns: int = 3
    max_completion_length: int = 320
    max_new_tokens_per_turn: int = 80
    temperature: float = 0.7
    """Rollout temperature (paper: 1.0; a tiny model's tool-call JSON falls apart at 1.0)."""
    eval_temperature: float = 0.0
    """0 = greedy (then one sample per item is all Avg@K needs)."""
    eval_budgets: tuple[int, ...] = (1, 2, 4, 8)
    eval_samples: int = 1
    """Samples per eval item (Avg@K)."""
    html_trajectories: int = 6
    threads: int = 2

    def __post_init__(self) -> None:
        for key in ("train_items", "eval_items", "sft_epochs", "num_generations", "train_max_turns", "eval_samples", "threads"):
            if getattr(self, key) < 1:
                raise ValueError(f"DemoConfig.{key} must be >= 1, got {getattr(self, key)}")
        if self.grpo_steps < 0:
            raise ValueError(f"DemoConfig.grpo_steps must be >= 0, got {self.grpo_steps}")
        if not self.eval_budgets or min(self.eval_budgets) < 1:
            raise ValueError(f"DemoConfig.eval_budgets must be positive turn counts, got {self.eval_budgets}")


#: The CI setting (``minio3 demo --quick``): every stage, fewer items and steps.
QUICK = DemoConfig(train_items=4, eval_items=2, sft_epochs=12, grpo_steps=1, grpo_prompts_per_step=1,
                   num_generations=2, eval_samples=1, html_trajectories=2, max_completion_length=256)


def _view_rules(cfg: DemoConfig):
    from .core import ViewRules

    return ViewRules(max_pixels=cfg.view_max_pixels, min_pixels=cfg.view_min_pixels)


def _episode_config(cfg: DemoConfig, max_turns: int):
    from .core import EpisodeConfig

    return EpisodeConfig(max_turns=max_turns, dialect="hermes", max_context_tokens=None, view=_view_rules(cfg))


def synthesise(cfg: DemoConfig, out: Path) -> tuple[list[dict], list[dict]]:
    """Train and eval rows (disjoint scenes)."""
    from .data.synthetic import generate, load_rows

    rows = load_rows(generate(out / "data", n=cfg.train_items + cfg.eval_items, seed=cfg.seed,
                              width=cfg.image_width, height=cfg.image_height))
    return rows[: cfg.train_items], rows[cfg.train_items:]


def build_model(cfg: DemoConfig, out: Path):
    """The tiny offline Qwen2.5-VL, saved to ``out/model/base``; returns (model, processor)."""
    from .testing import load_tiny_qwen, save_tiny_qwen

    # the processor's own bounds never resize what the view rules already sized
    path = save_tiny_qwen(out / "model" / "base", seed=cfg.seed, min_pixels=28 * 28 * 4,
                          max_pixels=cfg.view_max_pixels * 2)
    return load_tiny_qwen(path)


def cold_start_sft(cfg: DemoConfig, model, processor, rows: list[dict], bank, out: Path) -> dict[str, Any]:
    """TRL ``SFTTrainer`` on oracle trajectories (multi-turn, images in user and tool turns)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from .trl import ZoomEnvironment, oracle_conversation
    from .trl.sft import ToolImageCollator

    config = _episode_config(cfg, cfg.train_max_turns)
    examples = [oracle_conversation(r, config, bank, grid=cfg.oracle_grid, system_prompt=cfg.system_prompt) for r in rows]
    tools = [ZoomEnvironment(config, bank).zoom]  # the schema the RL and eval prompts carry
    args = SFTConfig(
        output_dir=str(out / "sft"), num_train_epochs=cfg.sft_epochs, learning_rate=cfg.sft_learning_rate,
        per_device_train_batch_size=cfg.sft_batch_size, lr_scheduler_type="cosine", warmup_steps=0.1,
        logging_steps=5, save_strategy="no", report_to=[], use_cpu=True, seed=cfg.seed, max_length=None,
        gradient_checkpointing=False, dataloader_num_workers=0,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=processor,
                         data_collator=ToolImageCollator(processor, assistant_only=True, tools=tools))
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"steps": trainer.state.global_step, "train_loss": result.training_loss,
            "first_logged_loss": losses[0] if losses else None, "last_logged_loss": losses[-1] if losses else None}


def masked_grpo(cfg: DemoConfig, model, processor, rows: list[dict], bank, judge, out: Path) -> dict[str, Any]:
    """A few masked-GRPO steps with the zoom environment and real sampling."""
    from datasets import Dataset

    from .trl import AccuracyReward, MaskedGRPOConfig, MaskedGRPOTrainer, ZoomEnvironment, format_reward, grpo_rows

    if cfg.grpo_steps == 0:
        return {"steps": 0, "log_history": []}
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    batch = cfg.grpo_prompts_per_step * cfg.num_generations
    args = MaskedGRPOConfig(
        output_dir=str(out / "grpo"), max_turns=cfg.train_max_turns, num_generations=cfg.num_generations,
        per_device_train_batch_size=batch, max_steps=cfg.grpo_steps, learning_rate=cfg.grpo_learning_rate,
        lr_scheduler_type="constant", max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature, beta=0.0, epsilon=0.2, epsilon_high=0.3, loss_type="dapo",
        generation_kwargs={"max_new_tokens": cfg.max_new_tokens_per_turn},
        logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=cfg.seed,
        gradient_checkpointing=False,
        reward_weights=[1.0, cfg.format_reward_weight] if cfg.format_reward_weight else None,
    )
    reward_funcs = [AccuracyReward(judge)] + ([format_reward] if cfg.format_reward_weight else [])
    env_factory = partial(ZoomEnvironment, config=_episode_config(cfg, cfg.train_max_turns), bank=bank)
    trainer = MaskedGRPOTrainer(model, reward_funcs=reward_funcs, args=args,
                                train_dataset=Dataset.from_list(grpo_rows(rows, cfg.system_prompt)), processing_class=processor,
                                environment_factory=env_factory)
    trainer.train()
    history = [h for h in trainer.state.log_history if "loss" in h]
    return {"steps": trainer.state.global_step, "log_history": history}


def hf_policy(model, processor, tools: list[Callable], *, max_new_tokens: int, temperature: float):
    """An async ``policy(messages) -> str`` over a local HF model (the runner's policy protocol)."""
    import torch

    tokenizer = processor.tokenizer
    sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0} if temperature > 0 else {"do_sample": False}

    def generate(messages: list[dict]) -> str:
        inputs = processor.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=True,
                                               return_dict=True, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, **sampling)
        return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    async def policy(messages: list[dict]) -> str:
        return generate(messages)

    return policy


def evaluate(cfg: DemoConfig, model, processor, rows: list[dict], bank, judge, out: Path) -> tuple[dict, list[dict]]:
    """Sample every eval item at the largest budget, score, and read off the smaller budgets."""
    from tqdm.auto import tqdm

    from .eval.metrics import summarize
    from .eval.runner import run_episode, score_trajectory
    from .trl import ZoomEnvironment

    budget = max(cfg.eval_budgets)
    config = _episode_config(cfg, budget)
    policy = hf_policy(model.eval(), processor, [ZoomEnvironment(config, bank).zoom],
                       max_new_tokens=cfg.max_new_tokens_per_turn, temperature=cfg.eval_temperature)

    async def run_all() -> list[dict]:
        trajectories = []
        jobs = [(row, k) for row in rows for k in range(cfg.eval_samples)]
        for row, k in tqdm(jobs, desc="eval episodes", unit="episode"):
            t = await run_episode(policy, row, config, bank, sample=k, crops_dir=out / "crops", token_counter=None,
                                  system_prompt=cfg.system_prompt)
            trajectories.append(await score_trajectory(t, judge))
        return trajectories

    import torch

    torch.manual_seed(cfg.seed)
    trajectories = asyncio.run(run_all())
    return summarize(trajectories, budgets=cfg.eval_budgets), trajectories


def write_report(out: Path, metrics: dict, summary: dict, trajectories: list[dict], cfg: DemoConfig) -> dict[str, Path]:
    from .eval.report import plot_accuracy_vs_budget, write_trajectory_html

    (out / "trajectories.jsonl").write_text("".join(json.dumps(t, default=str) + "\n" for t in trajectories))
    # show zooming trajectories first: they are the ones with boxes and crops to look at
    shown = sorted(trajectories, key=lambda t: -sum(1 for x in t["turns"] if x.get("observation_index")))
    paths = {
        "png": plot_accuracy_vs_budget(summary, out / "accuracy_vs_budget.png", title="minio3 demo: accuracy vs. turn budget"),
        "html": write_trajectory_html(shown[: cfg.html_trajectories], out / "trajectories.html", title="minio3 demo trajectories"),
        "metrics": out / "metrics.json",
    }
    paths["metrics"].write_text(json.dumps(metrics, indent=2, default=str))
    return paths


def run_demo(out_dir: str | os.PathLike[str], cfg: DemoConfig = DemoConfig(), *, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Run every stage into ``out_dir``; returns the report paths (``metrics``, ``png``, ``html``)."""
    import torch
    from transformers import set_seed

    from .core import ImageBank
    from .judge import Judge, JudgeConfig

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    set_seed(cfg.seed)
    timings: dict[str, float] = {}
    metrics: dict[str, Any] = {"config": asdict(cfg), "host": {"python": platform.python_version(), "torch": torch.__version__}}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        log(f"[minio3 demo] {name} ...")
        start = time.perf_counter()
        result = fn()
        timings[name] = round(time.perf_counter() - start, 2)
        log(f"[minio3 demo] {name} done in {timings[name]:.1f}s")
        return result

    bank = ImageBank(max_bytes=256 << 20, view_rules=_view_rules(cfg))
    judge = Judge(JudgeConfig())  # rule path: no endpoint, no network
    train, test = stage("synthesise", lambda: synthesise(cfg, out))
    model, processor = stage("build model", lambda: build_model(cfg, out))
    metrics["sft"] = stage("cold-start SFT", lambda: cold_start_sft(cfg, model, processor, train, bank, out))
    metrics["grpo"] = stage("masked GRPO", lambda: masked_grpo(cfg, model, processor, train, bank, judge, out))
    summary, trajectories = stage("evaluate", lambda: evaluate(cfg, model, processor, test, bank, judge, out))
    metrics["eval"] = summary
    metrics["judge"] = judge.metrics()
    metrics["timings_s"] = timings
    paths = stage("report", lambda: write_report(out, metrics, summary, trajectories, cfg))
    metrics["timings_s"] = timings
    paths["metrics"].write_text(json.dumps(metrics, indent=2, default=str))
    for row in summary["rows"]:
        acc = "n/a" if row["accuracy"] is None else f"{100 * row['accuracy']:.1f}%"
        log(f"[minio3 demo] budget {row['budget']}: accuracy {acc} over {row['items']} items, reasons {row['reasons']}")
    log(f"[minio3 demo] run folder: {out}")
    return paths
