"""The CPU demo: a tiny VLM learns to zoom (stage A); a proxy policy shows masking's signature (stage B).

``minio3 demo`` runs offline on a laptop CPU (≤ 5 minutes on 2 cores; ``--full`` ≤ 20).
The task is :mod:`minio3_ext.data.nested_zoom`: a 1-px checker of a colour and its
complement inside ``d`` nested frames, unreadable (grey) until the policy has zoomed
``d`` times; every view is 56×56 (32×32 in stage B).

**Stage A — the tiny Qwen2.5-VL** (:mod:`minio3_ext.testing`, random weights):

1. *reading pretraining*: single-view reading (a readable checker → its colour) with
   TRL's ``SFTTrainer`` and the package's collator; without it the tiny model never
   learns to read and answers one colour everywhere;
2. *cold-start SFT* on multi-zoom oracle conversations (``d`` zooms onto the centre
   of the latest observation, each crop cut by a core ``Episode``, then the answer);
3. a short *masked GRPO* stage through :class:`~minio3_ext.trl.MaskedGRPOTrainer` with
   the zoom environment and the runaway guard — a plumbing check, nothing more
   (measured: at this scale RL leaves the greedy policy unchanged or, unguarded,
   runs away);
4. *evaluation* with the episode runner by depth × turn budget on held-out items,
   and a *forced no-zoom probe* (the answer is forced at the first turn), which must
   stay near chance: the colour is not readable without zooming.

**Stage B — a proxy policy** (:mod:`minio3_ext.demo_proxy`): a small CNN with 8
discrete actions, written as model text and driven through the real core ``Episode``,
``masked_group_advantages`` and the eval runner; behaviour-cloned on depths 1–2,
then masked GRPO and plain GRPO from the same cold start with a 3-turn training
limit, evaluated at budgets 1–16, mean over seeds. It is not a language model.

The run folder gets ``metrics.json``, ``accuracy_vs_budget.png`` (stage-B curves with
the training limit marked, and the VLM's curves by depth) and ``trajectories.html``
(real VLM zoom chains: boxes on the original, every crop).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

from .demo_proxy import ProxyConfig

__all__ = ["DemoConfig", "run_demo", "QUICK", "FULL"]


@dataclass(frozen=True)
class DemoConfig:
    """Every knob of the demo; the defaults are the default run (≤ 5 minutes on 2 CPU cores)."""

    seed: int = 0
    threads: int = 1
    """torch CPU threads: on a busy 2-core machine 1 thread is ~2–6× faster than 2."""
    system_prompt: str = ("Answer the question about the image. Zoom into the centre of the latest image with the zoom "
                          "tool until you can read it, then answer inside <answer></answer>.")
    """Shorter than the library's (the tool schema already describes zoom): fewer tokens per CPU step."""
    view: int = 56
    depths: tuple[int, ...] = (1, 2, 3)
    # -- stage A: reading pretraining
    read_items: int = 384
    read_steps: int = 150
    """Reading is learnt after ~90 steps (measured); without this stage the model answers one colour."""
    read_batch_size: int = 8
    read_learning_rate: float = 3e-3
    # -- stage A: cold-start SFT on multi-zoom oracle conversations
    sft_items: int = 96
    sft_epochs: int = 6
    sft_batch_size: int = 4
    sft_learning_rate: float = 2e-3
    # -- stage A: the guarded masked-GRPO plumbing check
    grpo_steps: int = 2
    grpo_prompts_per_step: int = 2
    num_generations: int = 4
    grpo_learning_rate: float = 1e-5
    """Tiny on purpose: the stage checks the plumbing; it is not meant to move the policy."""
    max_masked_share: float = 0.6
    train_max_turns: int = 4
    """Stage A's training turn limit (depth 3 needs 4 turns)."""
    max_new_tokens_per_turn: int = 64
    # -- stage A: evaluation
    eval_items: int = 48
    eval_budgets: tuple[int, ...] = (1, 2, 3, 4, 6, 8)
    html_trajectories: int = 6
    # -- stage B
    stage_b_seeds: int = 2
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    parallel: bool = True
    """Run stage B in a second process (1 torch thread each) while stage A trains: the two stages share 2 cores."""
    skip_vlm: bool = False
    skip_proxy: bool = False

    def __post_init__(self) -> None:
        for key in ("read_items", "sft_items", "sft_epochs", "num_generations", "train_max_turns", "eval_items",
                    "threads", "stage_b_seeds", "read_batch_size", "sft_batch_size", "grpo_prompts_per_step"):
            if getattr(self, key) < 1:
                raise ValueError(f"DemoConfig.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("grpo_steps", "read_steps"):
            if getattr(self, key) < 0:
                raise ValueError(f"DemoConfig.{key} must be >= 0, got {getattr(self, key)}")
        if not self.eval_budgets or min(self.eval_budgets) < 1:
            raise ValueError(f"DemoConfig.eval_budgets must be positive turn counts, got {self.eval_budgets}")


#: ``minio3 demo --full``: 6 seeds and longer RL in stage B (≤ 20 minutes on 2 cores).
FULL = DemoConfig(stage_b_seeds=6, proxy=ProxyConfig(grpo_steps=200))

#: The test/CI setting (``minio3 demo --quick``): every stage and output, a fraction of the steps.
QUICK = DemoConfig(
    read_items=16, read_steps=4, sft_items=6, sft_epochs=1, grpo_steps=1, grpo_prompts_per_step=1, num_generations=2,
    eval_items=3, eval_budgets=(1, 2, 4), html_trajectories=2, stage_b_seeds=2,
    proxy=ProxyConfig(train_items=16, eval_items=8, cold_start_steps=20, grpo_steps=3, prompts_per_step=2,
                      rollouts_per_prompt=4, eval_budgets=(1, 2, 3, 4, 6)),
)


# -- stage A ------------------------------------------------------------------------

def _episode_config(cfg: DemoConfig, max_turns: int):
    from .core import EpisodeConfig
    from .data.nested_zoom import view_rules

    return EpisodeConfig(max_turns=max_turns, dialect="hermes", max_context_tokens=None, view=view_rules(cfg.view))


def _source(num_observations: int) -> str:
    return "original_image" if num_observations == 0 else f"observation_{num_observations}"


ZOOM_THOUGHT = "Too small: zoom in."
ANSWER_THOUGHT = "I can read it."


def _answer_text(dialect, answer: str) -> str:
    from .core import Answer

    return dialect.render_thought(ANSWER_THOUGHT) + dialect.render(Answer(answer))


def _answer_prefix(dialect) -> str:
    """How a forced answer turn starts: the answer thought and the answer's opening tag (from the dialect)."""
    from .core import Answer

    marker = "\x00"
    return dialect.render_thought(ANSWER_THOUGHT) + dialect.render(Answer(marker)).split(marker)[0]


def oracle_conversation(row: dict, config, bank, system_prompt: str) -> dict[str, Any]:
    """A multi-zoom oracle trajectory for ``SFTTrainer``: ``d`` zooms on the latest observation,
    then the answer (:func:`minio3_ext.trl.oracle_conversation` with the nested-zoom oracle's boxes)."""
    from .data.nested_zoom import oracle_boxes
    from .trl.data import oracle_conversation as conversation

    return conversation(row, config, bank, system_prompt=system_prompt, boxes=oracle_boxes(row),
                        explicit_source=True, zoom_thought=ZOOM_THOUGHT)


def reading_example(row: dict, config, bank) -> dict[str, Any]:
    """Single-view reading: the readable (innermost) view and the question → the answer."""
    from .core import Episode
    from .core.chat import slot_blocks
    from .data.nested_zoom import oracle_boxes

    path = row["images"][0]
    episode = Episode(bank.get(path), config, first_view=bank.first_view(path))
    d = episode.dialect
    view = None
    for box in oracle_boxes(row):
        view = episode.act(episode.parse_call("zoom", {"bbox_2d": list(box), "source": _source(episode.num_observations)})).image
    question = d.strip_slots(row["problem"])
    return {"messages": [
        {"role": "user", "content": slot_blocks(d, d.user_prompt(question), [view], placeholders=True)},
        {"role": "assistant", "content": [{"type": "text", "text": _answer_text(d, row["solution"])}]},
    ], "images": [view]}


def _sft(model, processor, examples: list[dict], out: Path, *, name: str, seed: int, steps: int | None, epochs: int,
         batch_size: int, learning_rate: float, tools: list | None) -> dict[str, Any]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from .trl.sft import ToolImageCollator

    args = SFTConfig(
        output_dir=str(out / name), num_train_epochs=epochs, max_steps=steps if steps else -1,
        learning_rate=learning_rate, per_device_train_batch_size=batch_size, lr_scheduler_type="cosine",
        warmup_steps=0.05, logging_steps=10, save_strategy="no", report_to=[], use_cpu=True, seed=seed,
        max_length=None, gradient_checkpointing=False, dataloader_num_workers=0, disable_tqdm=True,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=processor,
                         data_collator=ToolImageCollator(processor, assistant_only=True, tools=tools))
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"steps": trainer.state.global_step, "examples": len(examples), "train_loss": result.training_loss,
            "first_logged_loss": losses[0] if losses else None, "last_logged_loss": losses[-1] if losses else None}


def masked_grpo(cfg: DemoConfig, model, processor, rows: list[dict], bank, judge, out: Path) -> dict[str, Any]:
    """A few guarded masked-GRPO steps with the zoom environment: a plumbing check."""
    from datasets import Dataset

    from .trl import AccuracyReward, MaskedGRPOConfig, MaskedGRPOTrainer, ZoomEnvironment, grpo_rows

    if cfg.grpo_steps == 0:
        return {"steps": 0, "log_history": []}
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    args = MaskedGRPOConfig(
        output_dir=str(out / "grpo"), max_turns=cfg.train_max_turns, num_generations=cfg.num_generations,
        per_device_train_batch_size=cfg.grpo_prompts_per_step * cfg.num_generations, max_steps=cfg.grpo_steps,
        learning_rate=cfg.grpo_learning_rate, lr_scheduler_type="constant",
        max_completion_length=cfg.max_new_tokens_per_turn * (cfg.train_max_turns + 1) + 64,
        temperature=1.0, beta=0.0, loss_type="dapo", max_masked_share=cfg.max_masked_share,
        generation_kwargs={"max_new_tokens": cfg.max_new_tokens_per_turn},
        logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=cfg.seed, gradient_checkpointing=False,
        disable_tqdm=True,
    )
    env_factory = partial(ZoomEnvironment, config=_episode_config(cfg, cfg.train_max_turns), bank=bank)
    trainer = MaskedGRPOTrainer(model, reward_funcs=[AccuracyReward(judge)], args=args,
                                train_dataset=Dataset.from_list(grpo_rows(rows, cfg.system_prompt)),
                                processing_class=processor, environment_factory=env_factory)
    trainer.train()
    history = [h for h in trainer.state.log_history if "loss" in h]
    return {"steps": trainer.state.global_step, "log_history": history,
            "curves": {key: [h.get(name) for h in history] for key, name in
                       (("reward", "reward"), ("masked_share", "minio3/masked_share"),
                        ("guard_active", "minio3/guard_active"))}}


def hf_policy(model, processor, tools: list[Callable], *, max_new_tokens: int, prefix: str = ""):
    """An async greedy ``policy(messages) -> str`` over a local HF model; ``prefix`` forces how each turn starts."""
    import torch

    tokenizer = processor.tokenizer

    def generate(messages: list[dict]) -> str:
        prompt = processor.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False) + prefix
        images = [p["image"] for m in messages for p in m["content"] if p.get("type") == "image"]
        inputs = processor(text=[prompt], images=images or None, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        return prefix + tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    async def policy(messages: list[dict]) -> str:
        return generate(messages)

    return policy


def evaluate_vlm(cfg: DemoConfig, model, processor, rows: list[dict], bank, judge, out: Path,
                 log: Callable[[str], None]) -> tuple[dict, list[dict], float]:
    """Held-out items at the largest budget (smaller budgets as prefixes), then the forced no-zoom probe."""
    from .eval.metrics import summarize
    from .eval.runner import run_episode, score_trajectory

    config = _episode_config(cfg, max(cfg.eval_budgets))
    tools = None  # as in SFT: the system prompt describes the tool (its schema would add ~335 tokens a turn)
    policy = hf_policy(model.eval(), processor, tools, max_new_tokens=cfg.max_new_tokens_per_turn)
    probe = hf_policy(model, processor, tools, max_new_tokens=8, prefix=_answer_prefix(config.dialect))

    async def run_all() -> tuple[list[dict], list[dict]]:
        trajectories, forced = [], []
        for i, row in enumerate(rows):
            t = await run_episode(policy, row, config, bank, crops_dir=out / "crops", token_counter=None,
                                  system_prompt=cfg.system_prompt)
            trajectories.append(await score_trajectory(t, judge))
            f = await run_episode(probe, row, replace(config, max_turns=1), bank, token_counter=None,
                                  system_prompt=cfg.system_prompt)
            forced.append(await score_trajectory(f, judge))
            if (i + 1) % max(1, len(rows) // 4) == 0:
                log(f"[minio3 demo]   evaluated {i + 1}/{len(rows)} held-out items")
        return trajectories, forced

    trajectories, forced = asyncio.run(run_all())
    no_zoom = sum(f["verdict"] or 0 for f in forced) / max(1, len(forced))
    return summarize(trajectories, budgets=cfg.eval_budgets), trajectories, no_zoom


def run_stage_a(cfg: DemoConfig, out: Path, timed: Callable[[str, Callable[[], Any]], Any],
                log: Callable[[str], None]) -> tuple[dict[str, Any], list[dict]]:
    from .core import ImageBank
    from .data.nested_zoom import COLOUR_NAMES, generate, load_rows, view_rules
    from .judge import Judge, JudgeConfig
    from .testing import load_tiny_qwen, save_tiny_qwen

    bank = ImageBank(max_bytes=256 << 20, view_rules=view_rules(cfg.view))
    judge = Judge(JudgeConfig())  # rule path: no endpoint, no network
    data = out / "data"

    def synthesise():
        read = load_rows(generate(data / "read", cfg.read_items, seed=cfg.seed * 3 + 1, depths=cfg.depths, view=cfg.view, split="read"))
        train = load_rows(generate(data / "train", cfg.sft_items, seed=cfg.seed * 3, depths=cfg.depths, view=cfg.view))
        test = load_rows(generate(data / "heldout", cfg.eval_items, seed=cfg.seed * 3 + 2, depths=cfg.depths, view=cfg.view,
                                  split="heldout"))
        return read, train, test

    read_rows, train_rows, test_rows = timed("A: synthesise", synthesise)
    model, processor = timed("A: build model", lambda: load_tiny_qwen(save_tiny_qwen(out / "model" / "base", seed=cfg.seed)))
    config = _episode_config(cfg, cfg.train_max_turns)
    metrics: dict[str, Any] = {"chance": 1 / len(COLOUR_NAMES), "depths": list(cfg.depths), "view": cfg.view}
    if cfg.read_steps:
        metrics["reading_pretraining"] = timed("A: reading pretraining", lambda: _sft(
            model, processor, [reading_example(r, config, bank) for r in read_rows], out, name="read", seed=cfg.seed,
            steps=cfg.read_steps, epochs=1, batch_size=cfg.read_batch_size, learning_rate=cfg.read_learning_rate, tools=None))
    metrics["sft"] = timed("A: cold-start SFT", lambda: _sft(
        model, processor, [oracle_conversation(r, config, bank, cfg.system_prompt) for r in train_rows], out, name="sft",
        seed=cfg.seed, steps=None, epochs=cfg.sft_epochs, batch_size=cfg.sft_batch_size,
        learning_rate=cfg.sft_learning_rate, tools=None))
    metrics["grpo"] = timed("A: masked GRPO (plumbing check)", lambda: masked_grpo(cfg, model, processor, train_rows, bank, judge, out))
    summary, trajectories, no_zoom = timed("A: evaluate", lambda: evaluate_vlm(cfg, model, processor, test_rows, bank, judge, out, log))
    by_depth: dict[str, dict[int, float | None]] = {}
    mean_turns: dict[str, dict[int, float]] = {}
    for row in summary["rows"]:
        by_depth.setdefault(row["difficulty"], {})[row["budget"]] = row["accuracy"]
        mean_turns.setdefault(row["difficulty"], {})[row["budget"]] = row["mean_turns"]
    metrics.update(accuracy_by_depth_and_budget=by_depth, mean_turns_by_depth_and_budget=mean_turns,
                   no_zoom_accuracy=no_zoom, eval_items=len(test_rows), eval_rows=summary["rows"], judge=judge.metrics())
    return metrics, trajectories


# -- report ---------------------------------------------------------------------------

def plot(metrics: dict[str, Any], out_png: Path) -> Path:
    """Stage-B accuracy vs. budget (three curves, training limit marked) next to the VLM's curves by depth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    try:
        ax = axes[0]
        b = metrics.get("stage_b")
        if b:
            for variant, style in (("sft", "s--"), ("masked", "o-"), ("plain", "^-")):
                acc = b["eval"][variant]["accuracy_by_budget"]
                xs = sorted(acc)
                ax.plot(xs, [100 * acc[x] for x in xs], style, label={"sft": "cold start", "masked": "masked GRPO",
                                                                       "plain": "plain GRPO"}[variant])
            ax.axvline(b["train_max_turns"], color="grey", ls=":", label=f"training turn limit ({b['train_max_turns']})")
            ax.legend(fontsize=8)
        ax.set_title(f"Stage B: proxy policy (CNN), mean of {len(b['seeds']) if b else 0} seeds", fontsize=10)
        ax.set_xlabel("max turns at test time")
        ax.set_ylabel("held-out accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.3)
        ax = axes[1]
        vlm = metrics.get("vlm")
        if vlm:
            for depth, acc in sorted(vlm["accuracy_by_depth_and_budget"].items()):
                xs = sorted(acc)
                ax.plot(xs, [100 * (acc[x] or 0) for x in xs], "o-", label="all depths" if depth == "all" else f"depth {depth[1:]}")
            ax.axhline(100 * vlm["no_zoom_accuracy"], color="red", ls="--", label="forced no-zoom")
            ax.axhline(100 * vlm["chance"], color="grey", ls=":", label="chance")
            ax.legend(fontsize=8)
        ax.set_title("Stage A: tiny Qwen2.5-VL, nested zoom", fontsize=10)
        ax.set_xlabel("max turns at test time")
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(out_png)
    finally:
        plt.close(fig)
    return out_png


def _stage_b_process(proxy: ProxyConfig, seeds: list[int], out: str, threads: int) -> tuple[dict[str, Any], float, float]:
    """Stage B in a child process; returns its result, the CPU-seconds and the wall seconds it used."""
    import functools

    import torch

    from .demo_proxy import run_stage_b

    torch.set_num_threads(threads)
    start, wall = _cpu_seconds(), time.perf_counter()
    result = run_stage_b(proxy, seeds, Path(out), log=functools.partial(print, flush=True))
    return result, _cpu_seconds() - start, time.perf_counter() - wall


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_demo(out_dir: str | os.PathLike[str], cfg: DemoConfig = DemoConfig(), *, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Run both stages into ``out_dir``; returns the report paths (``metrics``, ``png``, ``html``)."""
    import torch
    from transformers import set_seed

    from .demo_proxy import run_stage_b
    from .eval.report import write_trajectory_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    set_seed(cfg.seed)
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    metrics: dict[str, Any] = {"config": asdict(cfg), "host": {"python": platform.python_version(), "torch": torch.__version__,
                                                              "threads": cfg.threads, "cpus": os.cpu_count()}}
    started, cpu_started = time.perf_counter(), _cpu_seconds()

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        log(f"[minio3 demo] {name} ...")
        w, c = time.perf_counter(), _cpu_seconds()
        result = fn()
        wall[name], cpu[name] = round(time.perf_counter() - w, 2), round(_cpu_seconds() - c, 2)
        log(f"[minio3 demo] {name} done in {wall[name]:.1f}s wall, {cpu[name]:.1f} CPU-s")
        return result

    trajectories: list[dict] = []
    seeds = [cfg.seed + k for k in range(cfg.stage_b_seeds)]
    stage_b_name = "B: proxy policy (cold start, masked and plain GRPO, eval)"
    pool = future = None
    if not cfg.skip_proxy and cfg.parallel and not cfg.skip_vlm:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        log(f"[minio3 demo] {stage_b_name}: started in a second process, alongside stage A")
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        future = pool.submit(_stage_b_process, cfg.proxy, seeds, str(out), cfg.threads)
    try:
        if not cfg.skip_vlm:
            metrics["vlm"], trajectories = run_stage_a(cfg, out, timed, log)
        if future is not None:
            stage_b, child_cpu, child_wall = timed("B: waiting for the second process", future.result)
            cpu[stage_b_name], wall[stage_b_name] = round(child_cpu, 2), round(child_wall, 2)
            metrics["stage_b"] = stage_b
        elif not cfg.skip_proxy:
            metrics["stage_b"] = timed(stage_b_name, lambda: run_stage_b(cfg.proxy, seeds, out, log=log))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if "stage_b" in metrics:
        metrics["eval"] = metrics["stage_b"]["eval"]
        metrics["train_max_turns"] = metrics["stage_b"]["train_max_turns"]

    def report() -> dict[str, Path]:
        (out / "trajectories.jsonl").write_text("".join(json.dumps(t, default=str) + "\n" for t in trajectories))
        shown = _pick_for_page(trajectories, cfg.html_trajectories)
        return {"png": plot(metrics, out / "accuracy_vs_budget.png"),
                "html": write_trajectory_html(shown[: cfg.html_trajectories], out / "trajectories.html",
                                              title="minio3 demo: tiny VLM zoom chains (held-out, nested zoom)"),
                "metrics": out / "metrics.json"}

    paths = timed("report", report)
    metrics["wall_s"], metrics["cpu_s"] = wall, cpu
    metrics["total_wall_s"] = round(time.perf_counter() - started, 2)
    metrics["total_cpu_s"] = round(_cpu_seconds() - cpu_started + (cpu.get(stage_b_name, 0.0) if future else 0.0), 2)
    paths["metrics"].write_text(json.dumps(metrics, indent=2, default=str))
    _print_summary(metrics, log)
    log(f"[minio3 demo] run folder: {out}  ({metrics['total_wall_s']:.0f}s wall, {metrics['total_cpu_s']:.0f} CPU-s)")
    return paths


def _pick_for_page(trajectories: list[dict], n: int) -> list[dict]:
    """Up to ``n`` trajectories, round-robin over depths, each depth's correct and longest zoom chains first."""
    groups: dict[str, list[dict]] = {}
    for t in trajectories:
        groups.setdefault(str(t.get("difficulty")), []).append(t)
    for group in groups.values():
        group.sort(key=lambda t: (-(t.get("verdict") or 0), -sum(1 for x in t["turns"] if x.get("observation_index"))))
    shown: list[dict] = []
    while len(shown) < n and any(groups.values()):
        for key in sorted(groups):
            if groups[key] and len(shown) < n:
                shown.append(groups[key].pop(0))
    return shown


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _print_summary(metrics: dict[str, Any], log: Callable[[str], None]) -> None:
    vlm = metrics.get("vlm")
    if vlm:
        for depth, acc in sorted(vlm["accuracy_by_depth_and_budget"].items()):
            log(f"[minio3 demo] VLM {depth}: " + ", ".join(f"budget {b} {_pct(a)}" for b, a in sorted(acc.items())))
        log(f"[minio3 demo] VLM forced no-zoom accuracy {_pct(vlm['no_zoom_accuracy'])} (chance {_pct(vlm['chance'])})")
    b = metrics.get("stage_b")
    if b:
        for variant in ("sft", "masked", "plain"):
            acc = b["eval"][variant]["accuracy_by_budget"]
            log(f"[minio3 demo] proxy {variant}: " + ", ".join(f"{k}:{100 * acc[k]:.0f}" for k in sorted(acc)))
