"""An image tool registered by entry point in another package (``tests/plugin_pkg``,
``equalize``) reaches verl with one tool-YAML entry: verl's own
``initialize_tools_from_config`` loads it through :class:`ImageToolAdapter`, the
``minio3_agent`` loop run by verl's real ``AgentLoopWorker`` names it in the system
prompt and runs it, in both dialects."""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
import pytest
from PIL import ImageOps
from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
from verl.tools.tool_registry import initialize_tools_from_config

import minio3_ext.core.tools as core_tools
import minio3_ext.verl as mv
from minio3_ext.core import ViewRules, load_image, resize_for_model
from minio3_ext.core.dialect import get_dialect
from minio3_ext.verl.tool import ImageToolAdapter, ZoomTool
from test_agent_loop import IM_END, _batch, _config  # tests/verl is on sys.path


@pytest.fixture
def equalize_installed(plugin_tool_site, monkeypatch):
    """The plugin package on sys.path, as ``pip install`` would put it; the registry
    reloads entry points and is restored afterwards."""
    monkeypatch.syspath_prepend(str(plugin_tool_site))
    monkeypatch.setattr(core_tools, "_REGISTRY", dict(core_tools._REGISTRY))
    monkeypatch.setattr(core_tools, "_entry_points_loaded", False)
    assert "equalize" in core_tools.available_tools()


@pytest.fixture
def tool_yaml(tmp_path):
    path = tmp_path / "tools.yaml"
    path.write_text(mv.config_path("zoom_tool.yaml").read_text() + (
        "  - class_name: minio3_ext.verl.tool.ImageToolAdapter\n"
        "    config:\n"
        "      type: native\n"
        "      tool: equalize\n"
    ))
    return path


def test_verl_tool_config_loads_the_entry_point_tool(equalize_installed, tool_yaml):
    zoom, equalize = initialize_tools_from_config(str(tool_yaml))
    assert isinstance(zoom, ZoomTool) and zoom.name == "zoom"
    assert type(equalize) is ImageToolAdapter and equalize.name == "equalize"
    schema = equalize.tool_schema.model_dump(exclude_unset=True, exclude_none=True)
    assert schema["function"]["description"].startswith("Equalize the histogram")


def test_an_unknown_tool_name_is_one_clear_error(tmp_path):
    path = tmp_path / "tools.yaml"
    path.write_text("tools:\n  - class_name: minio3_ext.verl.tool.ImageToolAdapter\n"
                    "    config: {type: native, tool: equalise}\n")
    with pytest.raises(ValueError, match=r"unknown image tool 'equalise'; registered: \[.*'zoom'"):
        initialize_tools_from_config(str(path))


def test_stock_tool_agent_path_runs_the_tool_with_verl_parsed_arguments(equalize_installed, tool_yaml, synthetic_rows):
    """verl's stock ToolAgentLoop hands the adapter already-parsed arguments."""
    from types import SimpleNamespace

    _, equalize = initialize_tools_from_config(str(tool_yaml))
    path = synthetic_rows[0]["images"][0]
    agent_data = SimpleNamespace(tools_kwargs={"zoom": {"create_kwargs": {"image": path}}})
    iid, _ = asyncio.run(equalize.create(create_kwargs={}))
    resp, _, info = asyncio.run(equalize.execute(iid, {"source": "original_image"}, agent_data=agent_data))
    expected = resize_for_model(ImageOps.equalize(load_image(path)), ViewRules())
    assert info == {} and np.array_equal(np.asarray(resp.image[0]), np.asarray(expected))
    assert "zoom-in" not in resp.text and "equalize" in resp.text


def _call(name: str, args: dict) -> str:
    return "<think>faint</think><tool_call>" + json.dumps({"name": name, "arguments": args}) + "</tool_call>"


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["minio3", "hermes"])
def test_the_agent_loop_runs_the_entry_point_tool(dialect, equalize_installed, tool_yaml, tiny_qwen_dir,
                                                  synthetic_rows, tmp_path, scripted_server):
    cfg = _config(tiny_qwen_dir, dialect)
    cfg.actor_rollout_ref.rollout.multi_turn.tool_config_path = str(tool_yaml)
    worker = AgentLoopWorker(cfg, llm_client=None)
    row = synthetic_rows[0]
    server = scripted_server(worker.tokenizer, {"answers": [
        _call("equalize", {"source": "original_image"}), f"<think>now visible</think><answer>{row['solution']}</answer>{IM_END}",
    ]})
    worker.llm_client = server
    out = asyncio.run(worker.generate_sequences(_batch(cfg, worker, [row], tmp_path, dialect, cases=["answers"])))
    assert list(out.non_tensor_batch["termination_reason"]) == ["answered"]
    assert out.batch["rm_scores"].sum().item() == 1.0

    d = get_dialect(dialect, tools=("zoom", "equalize"))
    first, second = server.calls["answers"]
    # the system prompt is the dialect's for the enabled tools, and names the new one
    assert first["context"].startswith("<|im_start|>system\n" + d.system_prompt()) and "- equalize:" in d.system_prompt()
    if dialect == "minio3":
        assert first["sampling_params"]["stop"] == list(d.stop) == ["</grounding>", "</tool_call>"]
        assert "<tools>" not in first["context"]
    else:
        assert '"name": "equalize"' in first["context"]  # the Hermes tool block lists it
    # the tool ran on the raw image; its result is the next observation, in the dialect's words
    expected = resize_for_model(ImageOps.equalize(load_image(row["images"][0])), ViewRules())
    assert len(second["images"]) == 2
    np.testing.assert_array_equal(np.asarray(second["images"][1]), np.asarray(expected))
    before, after = d.split_slots(d.observation_text(0, 1, "equalize"))
    assert f"{before}<|vision_start|>" in second["context"] and f"<|vision_end|>{after}" in second["context"]
    assert "zoom-in" not in before


def _yaml_with(tmp_path, name: str, text: str, old: str, new: str) -> str:
    path = tmp_path / name
    assert old in text
    path.write_text(text.replace(old, new))
    return str(path)


@pytest.mark.slow
def test_dialect_options_come_from_the_yamls_and_a_conflict_names_both(
    tiny_qwen_dir, synthetic_rows, tmp_path, scripted_server, monkeypatch
):
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

    monkeypatch.setitem(_agent_loop_registry, "minio3_agent", _agent_loop_registry["minio3_agent"])
    loops = _yaml_with(tmp_path, "loops.yaml", mv.config_path("agent_loop.yaml").read_text(),
                       "coords: relative", "coords: thousand")
    tools = _yaml_with(tmp_path, "tools.yaml", mv.config_path("zoom_tool.yaml").read_text(),
                       "coords: relative ", "coords: thousand ")
    row = synthetic_rows[0]
    cfg = _config(tiny_qwen_dir, "hermes")
    cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path = loops
    cfg.actor_rollout_ref.rollout.multi_turn.tool_config_path = tools
    worker = AgentLoopWorker(cfg, llm_client=None)
    server = worker.llm_client = scripted_server(worker.tokenizer, {"answers": [
        _call("zoom", {"bbox_2d": [0, 0, 500, 500]}) + IM_END, f"<answer>{row['solution']}</answer>{IM_END}"]})
    out = asyncio.run(worker.generate_sequences(_batch(cfg, worker, [row], tmp_path, "hermes", cases=["answers"])))
    assert list(out.non_tensor_batch["zooms"]) == [1]  # [0, 500] read on the 0-1000 scale
    d = get_dialect("hermes", coords="thousand")
    context = server.calls["answers"][0]["context"]
    assert context.startswith("<|im_start|>system\n" + d.system_prompt()) and "0-1000 scale" in context

    cfg.actor_rollout_ref.rollout.multi_turn.tool_config_path = str(mv.config_path("zoom_tool.yaml"))
    worker = AgentLoopWorker(cfg, llm_client=None)
    worker.llm_client = server
    from hydra.errors import InstantiationException  # verl instantiates the loop through Hydra

    with pytest.raises(InstantiationException, match=r"'coords' is 'thousand' in the agent-loop YAML but 'relative' in the tool YAML"):
        asyncio.run(worker.generate_sequences(_batch(cfg, worker, [row], tmp_path, "hermes", cases=["answers"])))
