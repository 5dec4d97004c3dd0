"""The recipes compose with verl's real Hydra configs (``--cfg job`` prints the job
config and exits without training; run in this interpreter, see ``_job``), and every
override is commented."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

import minio3_ext.verl as mv
from minio3_ext.verl.recipe import read_overrides

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "verl"
ENV = {"MODEL_PATH": "/models/qwen", "TRAIN_FILES": "/data/train.parquet", "VAL_FILES": "/data/val.parquet",
       "SFT_FILES": "/data/sft.parquet", "OUTPUT_DIR": "/ckpt", "NNODES": "2", "GPUS_PER_NODE": "8"}


def _job(module: str, overrides: list[str]) -> dict:
    """``python -m MODULE --cfg job OVERRIDES``, run in this interpreter: the module's own
    ``@hydra.main`` entry point with that ``sys.argv`` (a fresh interpreter per composition
    costs ~10 s of imports; in-process one takes ~0.5 s). Returns the printed job config."""
    entry = importlib.import_module(module)
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with pytest.MonkeyPatch.context() as m:
        for k, v in ENV.items():
            m.setenv(k, v)
        m.setattr(sys, "argv", [entry.__file__, "--cfg", "job", *overrides])
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                entry.main()
        except SystemExit as exc:  # Hydra exits 1 on a bad override, after printing why
            code = exc.code
        finally:
            GlobalHydra.instance().clear()
    assert code in (0, None), err.getvalue()[-3000:]
    return yaml.safe_load(out.getvalue())


def test_in_process_composition_refuses_a_bad_override_like_the_command():
    with pytest.raises(AssertionError, match=r"Could not override 'algorithm\.no_such_key'"):
        _job("verl.trainer.main_ppo", ["algorithm.no_such_key=1"])


def test_rl_recipe_with_smoke_and_eval_variants_composes_in_main_ppo():
    files = ["masked_grpo.args", "masked_grpo_smoke.args", "masked_grpo_eval.args"]
    overrides = [o for f in files for o in read_overrides(RECIPES / f, ENV)]
    job = _job("verl.trainer.main_ppo", overrides)
    algo, rollout = job["algorithm"], job["actor_rollout_ref"]["rollout"]
    assert algo["adv_estimator"] == "masked_grpo" and algo["masked_grpo"] == {"include_masked_in_stats": False}
    assert rollout["multi_turn"]["format"] == "minio3" and rollout["agent"]["default_agent_loop"] == "minio3_agent"
    assert Path(rollout["multi_turn"]["tool_config_path"]) == mv.config_path("zoom_tool.yaml")
    assert Path(rollout["multi_turn"]["tool_config_path"]).is_absolute()
    assert rollout["limit_images"] == 32 and rollout["multi_turn"]["max_assistant_turns"] == 32  # eval layer
    assert job["reward"]["custom_reward_function"]["path"] == "pkg://minio3_ext.verl.reward"
    assert job["trainer"]["total_training_steps"] == 2 and job["actor_rollout_ref"]["model"]["path"] == "/models/qwen"


def test_paper_hyperparameters_in_the_main_rl_list():
    ov = dict(o.lstrip("+").split("=", 1) for o in read_overrides(RECIPES / "masked_grpo.args", ENV))
    assert ov["data.train_batch_size"] == "256" and ov["actor_rollout_ref.rollout.n"] == "16"
    assert ov["actor_rollout_ref.actor.clip_ratio_low"] == "0.2" and ov["actor_rollout_ref.actor.clip_ratio_high"] == "0.3"
    assert ov["actor_rollout_ref.actor.optim.lr"] == "1e-6" and ov["actor_rollout_ref.actor.use_kl_loss"] == "false"
    assert ov["actor_rollout_ref.actor.entropy_coeff"] == "0"
    assert ov["actor_rollout_ref.rollout.multi_turn.max_assistant_turns"] == "6"
    assert ov["actor_rollout_ref.actor.ppo_mini_batch_size"] == "32"


def test_sft_recipe_composes_in_verl_sft_trainer():
    job = _job("verl.trainer.sft_trainer", read_overrides(RECIPES / "coldstart_sft.args", ENV))
    assert job["optim"]["lr"] == 1e-5 and job["optim"]["lr_scheduler_type"] == "cosine"
    assert job["data"]["max_length"] == 32768 and job["trainer"]["total_epochs"] == 3


@pytest.mark.parametrize("name", sorted(p.name for p in RECIPES.glob("*.args")))
def test_every_override_is_commented_and_parses(name):
    lines = (RECIPES / name).read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#"):
            assert lines[i - 1].lstrip().startswith("#"), f"{name}:{i + 1} has no comment above: {line}"
    OverridesParser.create().parse_overrides(read_overrides(RECIPES / name, ENV))


def test_scripts_are_valid_bash():
    for script in RECIPES.glob("*.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)


def test_missing_variable_is_named_with_file_and_line(tmp_path):
    f = tmp_path / "x.args"
    f.write_text("# model\nactor_rollout_ref.model.path=${NOT_SET_ANYWHERE}\n")
    with pytest.raises(KeyError, match=r"x.args:2: environment variable NOT_SET_ANYWHERE"):
        read_overrides(f, {})


def _fake_launch(tmp_path, script: str, env_extra: dict) -> list[str]:
    """Run a recipe script with ``torchrun`` / ``minio3`` / ``python -m verl...`` replaced by
    recorders on PATH; returns the launcher's argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "argv"
    (bin_dir / "torchrun").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\n')
    (bin_dir / "minio3").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {**os.environ, **ENV, **env_extra, "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]]),
           "PYTHONPATH": str(RECIPES.parents[1])}
    subprocess.run(["bash", str(RECIPES / script)], check=True, env=env, timeout=120)
    return log.read_text().splitlines()


@pytest.mark.slow  # two launches, each a fresh interpreter importing verl (~20 s)
def test_sft_launcher_honours_nodes_and_gpus(tmp_path):
    multi = _fake_launch(tmp_path, "coldstart_sft.sh", {"NNODES": "2", "GPUS_PER_NODE": "4", "NODE_RANK": "1",
                                                        "MASTER_ADDR": "head", "MASTER_PORT": "1234"})
    assert multi[:5] == ["--nnodes=2", "--node_rank=1", "--master_addr=head", "--master_port=1234", "--nproc_per_node=4"]
    assert multi[5:7] == ["-m", "verl.trainer.sft_trainer"] and "model.external_lib=minio3_ext.verl.freeze_vision" in multi
    single = _fake_launch(tmp_path, "coldstart_sft.sh", {"NNODES": "1", "GPUS_PER_NODE": "2"})
    assert single[:3] == ["--standalone", "--nnodes=1", "--nproc_per_node=2"]


def test_docs_verl_command_composes_in_main_ppo():
    import re
    import shlex

    doc = (RECIPES.parents[1] / "docs" / "verl.md").read_text()
    section = doc.split("```bash", 1)[1].split("```", 1)[0]
    command = section.split("python -m verl.trainer.main_ppo", 1)[1].replace("\\\n", " ").split("...", 1)[0]
    command = re.sub(r"\$\(python -c 'import minio3_ext.verl as m; print\(m.config_path\(\"([\w.]+)\"\)\)'\)",
                     lambda m: str(mv.config_path(m.group(1))), command)
    overrides = shlex.split(command)
    assert "trainer.v1.sampler.custom_sampler.path=pkg://minio3_ext.verl.sampler" in overrides
    job = _job("verl.trainer.main_ppo", overrides)
    assert job["actor_rollout_ref"]["actor"]["policy_loss"]["loss_mode"] == "masked_vanilla"
    assert job["trainer"]["v1"]["sampler"]["custom_sampler"]["name"] == "LiveGroupReplayBuffer"
