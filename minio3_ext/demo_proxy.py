"""Stage B of ``minio3 demo``: a small *proxy policy* on the real core, masked vs. plain GRPO.

This is not a language model. It is a small CNN over 32×32 views that chooses one of
8 discrete actions — zoom into a quadrant of the latest image, or answer one of the 4
colours — given the latest view and how many turns it has taken (what a language model
reads off its own history). Each action is written as model text (a Hermes zoom tool
call or ``<answer>…</answer>``) and driven through the real core
:class:`~minio3_ext.core.Episode` (parsing, cropping, resizing, termination), the
advantages come from the core :func:`~minio3_ext.core.masked_group_advantages`, and
evaluation goes through the eval runner (:func:`minio3_ext.eval.runner.run_episode`,
:func:`~minio3_ext.eval.metrics.summarize`). It exists because the tiny VLM of stage A
is too weak for RL to change it, while this policy is strong enough to show the
paper's signature: trained with a short turn limit, masked GRPO keeps gaining as the
test-time turn budget grows past that limit; plain GRPO learns to answer at the limit.

Task: :mod:`minio3_ext.data.nested_zoom`, quadrant layout, depths 1–4; with a
training limit of 3 turns, depths 3–4 cannot be solved during training.
"""

from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .core import Answer, Episode, EpisodeConfig, Zoom, masked_group_advantages, normalize_answer
from .core.dialect import get_dialect
from .core.images import resize_for_model
from .data.nested_zoom import COLOUR_NAMES, QUADRANT_BOXES, generate, load_rows, make_item, oracle_boxes, render, view_rules

__all__ = ["ProxyConfig", "action_text", "run_stage_b", "NUM_ACTIONS"]

NUM_ACTIONS = 4 + len(COLOUR_NAMES)
"""0–3: zoom into quadrant 0–3 of the latest image; 4–7: answer a colour."""


@dataclass(frozen=True)
class ProxyConfig:
    view: int = 32
    train_depths: tuple[int, ...] = (1, 2, 3, 4)
    cold_start_depths: tuple[int, ...] = (1, 2)
    train_items: int = 256
    eval_items: int = 96
    eval_depths: tuple[int, ...] = (1, 2, 3, 4)
    cold_start_steps: int = 50
    """Short on purpose: a cold start that is good but not perfect, as in the paper, leaves RL something to do."""
    cold_start_batch: int = 64
    cold_start_lr: float = 2e-3
    grpo_steps: int = 120
    prompts_per_step: int = 8
    rollouts_per_prompt: int = 8
    grpo_lr: float = 1e-3
    train_max_turns: int = 3
    max_masked_share: float | None = 0.6
    eval_budgets: tuple[int, ...] = tuple(range(1, 17))
    turn_scale: float = 4.0
    """The turn count enters the network as ``turns / turn_scale``."""


def action_text(action: int, num_observations: int, dialect: str = "hermes") -> str:
    """The model text of a discrete action (a zoom on the latest image, or an answer), rendered by the core dialect."""
    d = get_dialect(dialect)
    if action >= 4:
        return d.render(Answer(COLOUR_NAMES[action - 4]))
    source = "original_image" if num_observations == 0 else f"observation_{num_observations}"
    return d.render(Zoom(bbox=QUADRANT_BOXES[action], source=source))


def _net(seed: int):
    import torch
    from torch import nn

    class ProxyNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
            )
            self.head = nn.Sequential(nn.Linear(32 * 8 * 8 + 1, 64), nn.ReLU(), nn.Linear(64, NUM_ACTIONS))

        def forward(self, views, turns):
            h = self.conv(views).flatten(1)
            return self.head(torch.cat([h, turns[:, None]], 1))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ProxyNet()


def _tensor(views: Sequence[Any], view: int):
    import torch

    arrs = []
    for v in views:
        if v.size != (view, view):
            v = v.resize((view, view))
        arrs.append(np.asarray(v, dtype=np.float32))
    x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2)
    return x / 255.0 - 0.5


def _episode_config(cfg: ProxyConfig, max_turns: int) -> EpisodeConfig:
    return EpisodeConfig(max_turns=max_turns, dialect="hermes", max_context_tokens=None, view=view_rules(cfg.view))


def _items(cfg: ProxyConfig, seed: int, n: int, depths: Sequence[int], salt: int):
    out = []
    for i in range(n):
        item = make_item(seed * 1000 + salt, i, depths[i % len(depths)], layout="quadrant", view=cfg.view)
        out.append((item, render(item)))
    return out


def cold_start(cfg: ProxyConfig, seed: int, log: Callable[[str], None]):
    """Behaviour cloning of the oracle (zoom into the framed quadrant, answer when readable) on shallow items."""
    import torch

    config = _episode_config(cfg, 8)
    states, turns, actions = [], [], []
    for item, image in _items(cfg, seed, cfg.train_items, cfg.cold_start_depths, salt=7):
        episode = Episode(image, config)
        view = resize_for_model(image, config.view, first=True)
        chain = [QUADRANT_BOXES.index(b) for b in oracle_boxes({"quadrants": item.quadrants})]
        for t, a in enumerate(chain + [4 + COLOUR_NAMES.index(item.colour)]):
            states.append(view)
            turns.append(t)
            actions.append(a)
            obs = episode.step(action_text(a, episode.num_observations))
            if obs is not None:
                view = obs.image
    x, tt, y = _tensor(states, cfg.view), torch.tensor(turns, dtype=torch.float32) / cfg.turn_scale, torch.tensor(actions)
    net = _net(seed)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.cold_start_lr)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(cfg.cold_start_steps):
        idx = torch.randint(len(y), (cfg.cold_start_batch,), generator=gen)
        loss = torch.nn.functional.cross_entropy(net(x[idx], tt[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        acc = (net(x, tt).argmax(1) == y).float().mean().item()
    return net, {"states": len(y), "first_loss": losses[0], "last_loss": losses[-1], "train_action_accuracy": acc}


def grpo(cfg: ProxyConfig, net, seed: int, *, masked: bool, log: Callable[[str], None], label: str):
    """GRPO on all training depths under ``train_max_turns``; ``masked`` leaves over-turn rollouts out."""
    import torch

    net = copy.deepcopy(net)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.grpo_lr)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    config = _episode_config(cfg, cfg.train_max_turns)
    pool = _items(cfg, seed, cfg.train_items, cfg.train_depths, salt=11)
    first_views = [resize_for_model(img, config.view, first=True) for _, img in pool]
    curve: dict[str, list[float]] = {"reward": [], "masked_share": [], "guard_active": [], "mean_turns": []}
    for step in range(cfg.grpo_steps):
        picks = rng.choice(len(pool), cfg.prompts_per_step, replace=False)
        episodes, views, groups, truths = [], [], [], []
        for p in picks:
            item, image = pool[p]
            for _ in range(cfg.rollouts_per_prompt):
                episodes.append(Episode(image, config, first_view=first_views[p]))
                views.append(first_views[p])
                groups.append(int(p))
                truths.append(item.colour)
        traces: list[list[tuple[int, int, int]]] = [[] for _ in episodes]  # (state index, turn, action)
        states, state_turns = [], []
        with torch.no_grad():
            while True:
                live = [i for i, e in enumerate(episodes) if not e.done]
                if not live:
                    break
                x = _tensor([views[i] for i in live], cfg.view)
                t = torch.tensor([episodes[i].turns for i in live], dtype=torch.float32) / cfg.turn_scale
                acts = torch.multinomial(torch.softmax(net(x, t), 1), 1, generator=gen)[:, 0]
                for k, i in enumerate(live):
                    a = int(acts[k])
                    traces[i].append((len(states), episodes[i].turns, a))
                    states.append(views[i])
                    state_turns.append(episodes[i].turns)
                    obs = episodes[i].step(action_text(a, episodes[i].num_observations))
                    if obs is not None and obs.image is not None:
                        views[i] = obs.image
        scores = np.array([float(e.answer is not None and normalize_answer(e.answer) == normalize_answer(c))
                           for e, c in zip(episodes, truths)])
        overturn = np.array([e.is_overturn for e in episodes])
        share = float(overturn.mean())
        guard = bool(masked and cfg.max_masked_share is not None and share > cfg.max_masked_share)
        live = ~overturn if masked and not guard else np.ones_like(overturn)
        adv = masked_group_advantages(scores, groups, live)
        rows = [(j, float(adv[i])) for i, tr in enumerate(traces) if live[i] for j, _, _ in tr]
        acts = torch.tensor([a for i, tr in enumerate(traces) if live[i] for _, _, a in tr])
        if rows:
            idx = [j for j, _ in rows]
            x = _tensor([states[j] for j in idx], cfg.view)
            t = torch.tensor([state_turns[j] for j in idx], dtype=torch.float32) / cfg.turn_scale
            logp = torch.log_softmax(net(x, t), 1).gather(1, acts[:, None])[:, 0]
            a_t = torch.tensor([a for _, a in rows], dtype=torch.float32)
            loss = -(a_t * logp).sum() / len(rows)  # token-level mean over live rows (DAPO-style)
            opt.zero_grad()
            loss.backward()
            opt.step()
        curve["reward"].append(float(scores.mean()))
        curve["masked_share"].append(share)
        curve["guard_active"].append(float(guard))
        curve["mean_turns"].append(float(np.mean([e.turns for e in episodes])))
        if (step + 1) % max(1, cfg.grpo_steps // 4) == 0:
            k = max(1, cfg.grpo_steps // 4)
            log(f"[minio3 demo]   {label} step {step + 1}/{cfg.grpo_steps}: reward {np.mean(curve['reward'][-k:]):.2f}, "
                f"masked share {np.mean(curve['masked_share'][-k:]):.2f}, guard {np.mean(curve['guard_active'][-k:]):.2f}")
    return net, curve


def proxy_policy(net, cfg: ProxyConfig):
    """The runner's async ``policy(messages) -> str`` for the proxy: greedy over the latest image."""
    import torch

    async def policy(messages: list[dict]) -> str:
        images = [p["image"] for m in messages for p in m["content"] if p.get("type") == "image"]
        turns = sum(m["role"] == "assistant" for m in messages)
        with torch.no_grad():
            logits = net(_tensor([images[-1]], cfg.view), torch.tensor([turns / cfg.turn_scale]))
        return action_text(int(logits.argmax(1)), len(images) - 1)

    return policy


def evaluate(cfg: ProxyConfig, net, rows: list[dict], bank, judge, label: str) -> dict[str, Any]:
    from .eval.metrics import summarize
    from .eval.runner import run_episode, score_trajectory

    config = _episode_config(cfg, max(cfg.eval_budgets))
    policy = proxy_policy(net, cfg)

    async def run_all() -> list[dict]:
        out = []
        for row in rows:
            t = await run_episode(policy, row, config, bank, token_counter=None)
            out.append(await score_trajectory(t, judge))
        return out

    trajectories = asyncio.run(run_all())
    summary = summarize(trajectories, budgets=cfg.eval_budgets)
    overall = {r["budget"]: r for r in summary["rows"] if r["difficulty"] == "all"}
    by_depth: dict[str, dict[int, float]] = {}
    for r in summary["rows"]:
        if r["difficulty"] != "all":
            by_depth.setdefault(r["difficulty"], {})[r["budget"]] = r["accuracy"]
    return {
        "accuracy_by_budget": {b: overall[b]["accuracy"] for b in cfg.eval_budgets},
        "mean_turns_by_budget": {b: overall[b]["mean_turns"] for b in cfg.eval_budgets},
        "accuracy_by_depth_and_budget": by_depth,
        "reasons_at_largest_budget": overall[max(cfg.eval_budgets)]["reasons"],
    }


def run_stage_b(cfg: ProxyConfig, seeds: Sequence[int], out: Path, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Cold start, then masked and plain GRPO from it, for each seed; evaluate all three at every budget."""
    import torch

    from .core import ImageBank
    from .judge import Judge, JudgeConfig

    bank = ImageBank(max_bytes=256 << 20, view_rules=view_rules(cfg.view))
    judge = Judge(JudgeConfig())
    variants = ("sft", "masked", "plain")
    per_seed: list[dict[str, Any]] = []
    for seed in seeds:
        torch.manual_seed(seed)
        record: dict[str, Any] = {"seed": seed, "wall_s": {}, "cpu_s": {}, "curves": {}, "eval": {}}

        def timed(name: str, fn: Callable[[], Any]) -> Any:
            w, c = time.perf_counter(), time.process_time()
            result = fn()
            record["wall_s"][name] = round(time.perf_counter() - w, 2)
            record["cpu_s"][name] = round(time.process_time() - c, 2)
            return result

        eval_rows = load_rows(generate(out / "proxy_data" / f"seed{seed}", cfg.eval_items, seed=10_000 + seed,
                                       depths=cfg.eval_depths, layout="quadrant", view=cfg.view, split="heldout"))
        log(f"[minio3 demo] stage B seed {seed}: cold start (behaviour cloning on depths {list(cfg.cold_start_depths)}) ...")
        base, record["cold_start"] = timed("cold_start", lambda: cold_start(cfg, seed, log))
        nets = {"sft": base}
        for variant in ("masked", "plain"):
            log(f"[minio3 demo] stage B seed {seed}: {variant} GRPO, {cfg.grpo_steps} steps, turn limit {cfg.train_max_turns} ...")
            nets[variant], record["curves"][variant] = timed(
                f"{variant}_grpo", lambda v=variant: grpo(cfg, base, seed, masked=v == "masked", log=log, label=v))
        for variant in variants:
            record["eval"][variant] = timed(f"eval_{variant}", lambda v=variant: evaluate(cfg, nets[v], eval_rows, bank, judge, v))
        b_lim, b_max = cfg.train_max_turns, max(cfg.eval_budgets)
        log("[minio3 demo] stage B seed {}: accuracy at budget {} / {}: {}".format(
            seed, b_lim, b_max, ", ".join(f"{v} {100 * record['eval'][v]['accuracy_by_budget'][b_lim]:.1f} / "
                                          f"{100 * record['eval'][v]['accuracy_by_budget'][b_max]:.1f}" for v in variants)))
        per_seed.append(record)
    mean_eval = {
        v: {key: {b: float(np.mean([r["eval"][v][key][b] for r in per_seed])) for b in cfg.eval_budgets}
            for key in ("accuracy_by_budget", "mean_turns_by_budget")}
        for v in variants
    }
    return {"proxy_policy": True, "train_max_turns": cfg.train_max_turns, "seeds": list(seeds),
            "eval": mean_eval, "per_seed": per_seed}
