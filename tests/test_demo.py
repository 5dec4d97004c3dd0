"""``minio3 demo``: the quick setting end to end (structure of every output), and stage B on the real core.

The learning goals (VLM accuracy, masked vs. plain past the training limit) are
measured by ``minio3 demo`` and reported in docs/demo.md; they are not asserted here.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from minio3_ext import demo_proxy
from minio3_ext.cli import main
from minio3_ext.core import Episode, EpisodeConfig
from minio3_ext.data.nested_zoom import QUADRANT_BOXES, make_item, render, view_rules
from minio3_ext.demo import QUICK

pytestmark = pytest.mark.slow


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def _open(src: str, base: Path) -> Image.Image:
    if src.startswith("data:"):
        return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    path = base / unquote(src)
    assert path.is_file(), f"the page references a missing image: {src}"
    return Image.open(path)


class _Spy:
    """Counts calls and keeps arguments, then calls the real function."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.fn(*args, **kwargs)


def test_quick_demo_writes_every_output_through_the_real_pipeline(tmp_path, monkeypatch, capsys):
    import minio3_ext.eval.runner as runner

    episodes = _Spy(runner.run_episode)  # stage A evaluates here; stage B runs in its own process
    monkeypatch.setattr(runner, "run_episode", episodes)

    out = tmp_path / "run"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out / "trajectories.html") in printed
    for stage in ("A: reading pretraining", "A: cold-start SFT", "A: masked GRPO", "A: evaluate", "B: proxy policy"):
        assert f"[minio3 demo] {stage}" in printed  # progress for every stage

    metrics = json.loads((out / "metrics.json").read_text())
    vlm = metrics["vlm"]
    budgets = [str(b) for b in QUICK.eval_budgets]
    assert set(vlm["accuracy_by_depth_and_budget"]) == {"d1", "d2", "d3", "all"}
    for acc in vlm["accuracy_by_depth_and_budget"].values():
        assert sorted(acc, key=int) == budgets and all(0.0 <= a <= 1.0 for a in acc.values())
    assert 0.0 <= vlm["no_zoom_accuracy"] <= 1.0 and vlm["chance"] == 0.25
    assert vlm["sft"]["steps"] > 0 and vlm["reading_pretraining"]["steps"] == QUICK.read_steps
    (grpo_step,) = vlm["grpo"]["log_history"]  # the guarded MaskedGRPOTrainer stage ran one step
    assert 0.0 <= grpo_step["minio3/masked_share"] <= 1.0 and "minio3/guard_active" in grpo_step

    proxy_budgets = [str(b) for b in QUICK.proxy.eval_budgets]
    assert metrics["train_max_turns"] == QUICK.proxy.train_max_turns == 3
    for variant in ("sft", "masked", "plain"):
        acc = metrics["eval"][variant]["accuracy_by_budget"]
        turns = metrics["eval"][variant]["mean_turns_by_budget"]
        assert sorted(acc, key=int) == sorted(turns, key=int) == proxy_budgets
        assert all(0.0 <= a <= 1.0 for a in acc.values())
        assert all(1.0 <= t <= int(b) for b, t in turns.items())
    per_seed = metrics["stage_b"]["per_seed"]
    assert [r["seed"] for r in per_seed] == [0, 1]
    for record in per_seed:
        for variant in ("masked", "plain"):
            curves = record["curves"][variant]
            assert {len(v) for v in curves.values()} == {QUICK.proxy.grpo_steps}
            assert set(curves) == {"reward", "masked_share", "guard_active", "mean_turns"}
        # the mean over seeds is what metrics.eval reports
    mean = np.mean([[r["eval"]["masked"]["accuracy_by_budget"][b] for b in proxy_budgets] for r in per_seed], 0)
    assert mean.tolist() == pytest.approx([metrics["eval"]["masked"]["accuracy_by_budget"][b] for b in proxy_budgets])
    assert {"A: cold-start SFT", "A: evaluate", "B: proxy policy (cold start, masked and plain GRPO, eval)"} <= set(metrics["wall_s"])
    assert set(metrics["cpu_s"]) == set(metrics["wall_s"])
    assert len(episodes.calls) == 2 * QUICK.eval_items  # each held-out item, then the forced no-zoom probe
    assert metrics["total_cpu_s"] >= metrics["cpu_s"]["B: proxy policy (cold start, masked and plain GRPO, eval)"] > 0

    with Image.open(out / "accuracy_vs_budget.png") as png:
        assert png.format == "PNG" and png.width > 600

    html_path = out / "trajectories.html"
    parser = _Images()
    parser.feed(html_path.read_text(encoding="utf-8"))
    assert parser.srcs, "the trajectory page shows no image"
    for src in parser.srcs:
        with _open(src, html_path.parent) as img:
            img.load()
            assert img.width > 0 and img.height > 0
    trajectories = [json.loads(line) for line in (out / "trajectories.jsonl").read_text().splitlines()]
    assert len(trajectories) == QUICK.eval_items and all(t["scored"] for t in trajectories)


def test_stage_b_runs_on_the_core_episode_advantages_and_eval_runner(tmp_path, monkeypatch):
    import minio3_ext.eval.runner as runner

    advantages = _Spy(demo_proxy.masked_group_advantages)
    monkeypatch.setattr(demo_proxy, "masked_group_advantages", advantages)
    episodes = _Spy(runner.run_episode)
    monkeypatch.setattr(runner, "run_episode", episodes)
    steps = _Spy(Episode.step)
    monkeypatch.setattr(Episode, "step", lambda self, *a, **k: steps(self, *a, **k))
    cfg = QUICK.proxy
    result = demo_proxy.run_stage_b(cfg, [3], tmp_path, log=lambda _: None)
    assert result["proxy_policy"] is True and result["seeds"] == [3]
    assert len(advantages.calls) == 2 * cfg.grpo_steps  # every GRPO step of both variants
    assert len(episodes.calls) == 3 * cfg.eval_items  # cold start, masked, plain: every held-out item
    rollouts = 2 * cfg.grpo_steps * cfg.prompts_per_step * cfg.rollouts_per_prompt
    assert len(steps.calls) >= rollouts + 3 * cfg.eval_items
    texts = {args[1] for args, _ in steps.calls}
    assert any(t.startswith("<tool_call>") for t in texts) and any(t.startswith("<answer>") for t in texts)


def test_proxy_actions_are_model_text_the_core_episode_executes():
    item = make_item(0, 0, 2, layout="quadrant", view=32)
    episode = Episode(render(item), EpisodeConfig(max_turns=3, dialect="hermes", max_context_tokens=None, view=view_rules(32)))
    q0, q1 = item.quadrants
    assert episode.step(demo_proxy.action_text(q0, 0)).image.size == (32, 32)
    obs = episode.step(demo_proxy.action_text(q1, 1))
    assert obs is not None and obs.index == 2
    x0, y0 = QUADRANT_BOXES[q0][0] * 64, QUADRANT_BOXES[q0][1] * 64  # raw 128 -> quadrant of 64, then of 32
    assert episode.records[-1].box_in_original == (
        int(x0 + QUADRANT_BOXES[q1][0] * 64), int(y0 + QUADRANT_BOXES[q1][1] * 64),
        int(x0 + QUADRANT_BOXES[q1][2] * 64), int(y0 + QUADRANT_BOXES[q1][3] * 64))
    assert episode.step(demo_proxy.action_text(4 + 2, 2)) is None and episode.answer == "blue"
    assert episode.termination_reason == "answered"


def test_masked_grpo_leaves_over_turn_rollouts_out_and_the_guard_suspends_masking(monkeypatch):
    cfg = demo_proxy.ProxyConfig(train_items=8, cold_start_steps=5, grpo_steps=2, prompts_per_step=2, rollouts_per_prompt=4)
    net, _ = demo_proxy.cold_start(cfg, 0, print)
    spy = _Spy(demo_proxy.masked_group_advantages)
    monkeypatch.setattr(demo_proxy, "masked_group_advantages", spy)

    def lives():
        out = [np.asarray(args[2]) for args, _ in spy.calls]
        spy.calls.clear()
        return out

    # an untrained net rarely answers within 3 turns: over-turn rollouts exist
    _, curve = demo_proxy.grpo(cfg, net, 0, masked=False, log=print, label="plain")
    assert all(live.all() for live in lives())  # plain GRPO: every rollout trains
    _, curve = demo_proxy.grpo(replace(cfg, max_masked_share=None), net, 0, masked=True, log=print, label="masked")
    masked_lives = lives()
    assert curve["guard_active"] == [0.0, 0.0] and max(curve["masked_share"]) > 0
    assert [float((~live).mean()) for live in masked_lives] == curve["masked_share"]
    _, curve = demo_proxy.grpo(replace(cfg, max_masked_share=0.0), net, 0, masked=True, log=print, label="guarded")
    guarded = lives()
    assert max(curve["guard_active"]) == 1.0
    for share, active, live in zip(curve["masked_share"], curve["guard_active"], guarded):
        assert active == float(share > 0.0) and (live.all() if active else True)
