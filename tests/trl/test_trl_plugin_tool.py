"""A tool from a separate package (entry point ``minio3_ext.tools``) reaches TRL with one switch,
``EpisodeConfig(dialect=get_dialect(..., tools=("zoom", "equalize")))`` (issue 10): ``ZoomEnvironment`` exposes it, the
trainer lists it, the system prompt and the rendered tool schemas name it, a rollout calls it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("dialect", ["hermes", "minio3"])
def test_an_entry_point_tool_is_a_trl_tool_and_a_rollout_calls_it(plugin_tool_site, tiny_qwen_dir, synthetic_jsonl,
                                                                    tmp_path, dialect):
    out = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_tool_site), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("_plugin_rollout.py")), str(tiny_qwen_dir),
                           str(synthetic_jsonl), str(out), dialect], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert "equalize" in r["registered"]
    assert sorted(r["trainer_tools"]) == ["equalize", "zoom"]
    assert "- equalize:" in r["system_prompt"] and r["system_prompt"] in r["first_prompt"]
    if dialect == "hermes":  # the Qwen template renders the schemas TRL built from the methods
        assert '"name": "equalize"' in r["first_prompt"]
    # the rollout's equalize call ran as the episode's first action; its result came back as an observation
    assert r["actions"] == ["equalize", "answer"] and r["reason"] == "answered"
    assert "result of the equalize tool" in r["second_prompt"] and "zoom-in image" not in r["second_prompt"]
    assert r["logs"]["minio3/termination/answered"] == pytest.approx(1 / 3)
