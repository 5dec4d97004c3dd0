"""Issue 11 item 5: the hermes dialect on Qwen2.5-VL. With the checkpoint's stock chat
template, tool turns render as ``<|im_start|>tool`` without ``<tool_response>`` and the
system turn has no ``<tools>`` block; the recipe's hermes variant sets the shipped
tool-capable template. Run through verl's real AgentLoopWorker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import trl
from verl.experimental.agent_loop.agent_loop import AgentLoopWorker, _agent_loop_registry

import minio3_ext.verl as mv
from minio3_ext.core.dialect import get_dialect
from minio3_ext.verl.recipe import read_overrides
from test_agent_loop import _batch, _config, _scripts  # tests/verl is on sys.path
from test_recipes import ENV, _job

#: Qwen2.5-VL-Instruct's own chat template (TRL keeps a byte copy to recognise the model)
STOCK = (Path(trl.__file__).parent / "chat_templates" / "qwen2_5_vl.jinja").read_text()
RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "verl"


def _run(cfg, rows, tmp_path, scripted_server):
    worker = AgentLoopWorker(cfg, llm_client=None)
    server = scripted_server(worker.tokenizer, _scripts("hermes", rows[0]["solution"]))
    worker.llm_client = server
    out = asyncio.run(worker.generate_sequences(_batch(cfg, worker, rows[:1], tmp_path, "hermes", cases=["answers"])))
    return out, server.calls["answers"]


@pytest.mark.slow
def test_stock_template_mangles_tool_turns_and_the_hermes_variant_does_not(
    tiny_qwen_dir, synthetic_rows, tmp_path, scripted_server, monkeypatch
):
    monkeypatch.setitem(_agent_loop_registry, "minio3_agent", _agent_loop_registry["minio3_agent"])
    hermes = dict(o.split("=", 1) for o in read_overrides(RECIPES / "masked_grpo_hermes.args", ENV))
    assert hermes["actor_rollout_ref.rollout.multi_turn.format"] == "hermes"

    cfg = _config(tiny_qwen_dir, "hermes")
    cfg.actor_rollout_ref.model.custom_chat_template = STOCK
    _, calls = _run(cfg, synthetic_rows, tmp_path, scripted_server)
    assert "<|im_start|>tool\n" in calls[1]["context"] and "<tool_response>" not in calls[1]["context"]
    assert "<tools>" not in calls[0]["context"]  # the stock template ignores the tool schemas

    cfg = _config(tiny_qwen_dir, "hermes")
    cfg.actor_rollout_ref.model.custom_chat_template = STOCK
    cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path = hermes["actor_rollout_ref.rollout.agent.agent_loop_config_path"]
    out, calls = _run(cfg, synthetic_rows, tmp_path, scripted_server)
    assert list(out.non_tensor_batch["termination_reason"]) == ["answered"]
    d = get_dialect("hermes")
    assert calls[0]["context"].startswith("<|im_start|>system\n" + d.system_prompt() + "\n\n# Tools")
    assert '<tools>\n{"type": "function", "function": {"name": "zoom"' in calls[0]["context"]
    before, after = d.split_slots(d.observation_text(0, 1))
    turn = f"</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{before}<|vision_start|>"
    assert turn in calls[1]["context"] and f"<|vision_end|>{after}\n</tool_response><|im_end|>" in calls[1]["context"]
    assert "<|im_start|>tool" not in calls[2]["context"]


def test_the_hermes_recipe_variant_composes_in_main_ppo():
    overrides = [o for f in ("masked_grpo.args", "masked_grpo_hermes.args") for o in read_overrides(RECIPES / f, ENV)]
    rollout = _job("verl.trainer.main_ppo", overrides)["actor_rollout_ref"]["rollout"]
    assert rollout["multi_turn"]["format"] == "hermes"
    assert Path(rollout["agent"]["agent_loop_config_path"]) == mv.config_path("agent_loop_hermes.yaml")


def test_the_hermes_template_is_shipped():
    assert "<tool_response>" in mv.config_path("qwen2_5_vl_tools.jinja").read_text()
    assert "chat_template: qwen2_5_vl_tools.jinja" in mv.config_path("agent_loop_hermes.yaml").read_text()
