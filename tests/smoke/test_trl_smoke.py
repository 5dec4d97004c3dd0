"""``minio3 smoke trl --out DIR`` as a user runs it: the shipped TRL recipe scripts train
for real on CPU (SFT, then masked GRPO with TRL's own generation), and DIR/metrics.json
carries the trainers' own logs and a before/after weight checksum."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_smoke_trl_runs_both_recipe_scripts_and_changes_the_weights(tmp_path):
    out = tmp_path / "smoke"
    done = subprocess.run([sys.executable, "-m", "minio3_ext.cli", "smoke", "trl", "--out", str(out)],
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trl.sft.steps"] >= 1 and metrics["trl.rl.steps"] == 2
    rl = metrics["trl.rl.metrics"]
    # TRL's own logged keys, and the package's minio3/* metrics logged through TRL's logger
    for key in ("loss", "grad_norm", "reward", "reward_std", "completions/mean_length", "num_tokens",
                "minio3/masked_share", "minio3/turns_mean", "minio3/answer_share"):
        assert key in rl, key
    assert rl["num_tokens"] > 0 and rl["completions/mean_length"] > 0  # generated, not scripted
    # the same dicts as the trainer's log_history in trainer_state.json (read, not recomputed)
    state = json.loads((out / "grpo" / "trainer_state.json").read_text())
    assert [h for h in state["log_history"] if "loss" in h][-1] == rl
    assert metrics["trl.rl.weights_changed"] is True
    checksum = metrics["trl.rl.checksum"]
    assert checksum["before"] != checksum["after"] and checksum["tensors_changed"] > 0
    assert checksum["vision_tensors_changed"] == 0  # the recipe freezes the vision tower
    assert any(h.get("grad_norm", 0) > 0 for h in metrics["trl.rl.log_history"])
    assert "--use_vllm" in metrics["trl.overrides"]["grpo"]


def test_smoke_help_and_bad_out(tmp_path):
    from minio3_ext.cli import main

    (tmp_path / "file").write_text("x")
    assert main(["smoke", "trl", "--out", str(tmp_path / "file")]) == 2
    with pytest.raises(SystemExit):
        main(["smoke", "trl"])  # --out is required
