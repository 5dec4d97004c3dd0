"""The verl launch scripts launch nothing when they cannot build the job: a missing
variable, a missing args file, a failing ``minio3 doctor`` (or, multi-node, a failing
cluster check) exits non-zero with a line naming what failed, before ``main_ppo`` /
``torchrun`` start.

Each script runs as a user runs it (``bash recipes/verl/X.sh``) with recorders on
``PATH``: ``python`` hands ``-m minio3_ext.verl.recipe`` to the real interpreter and
records any other call (the launcher) instead of running it; ``torchrun`` records;
``minio3`` (the doctor) exits with ``$STUB_DOCTOR_RC`` and ``python -m minio3_ext.verl.cluster``
(the multi-node check) with ``$STUB_CLUSTER_RC``. Slow: every composition imports verl (~8 s here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes" / "verl"
FULL_ENV = {"MODEL_PATH": "/models/qwen", "TRAIN_FILES": "/data/train.parquet", "VAL_FILES": "/data/val.parquet",
            "SFT_FILES": "/data/sft.parquet", "OUTPUT_DIR": "/ckpt", "NNODES": "1", "GPUS_PER_NODE": "8"}
SCRIPTS = {
    "masked_grpo.sh": ("masked_grpo.args", "TRAIN_FILES"),
    "coldstart_sft.sh": ("coldstart_sft.args", "SFT_FILES"),
    "masked_grpo_multinode.sh": ("masked_grpo.args", "MODEL_PATH"),
}


def _stubs(tmp_path: Path) -> tuple[Path, Path]:
    bin_dir, log = tmp_path / "bin", tmp_path / "launched"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-m" ] && [ "$2" = "minio3_ext.verl.recipe" ]; then exec {sys.executable} "$@"; fi\n'
        'if [ "$1" = "-m" ] && [ "$2" = "minio3_ext.verl.cluster" ]; then exit "${STUB_CLUSTER_RC:-0}"; fi\n'
        f'echo "python $*" >> {log}\n')
    (bin_dir / "torchrun").write_text(f'#!/bin/sh\necho "torchrun $*" >> {log}\n')
    (bin_dir / "minio3").write_text('#!/bin/sh\nexit "${STUB_DOCTOR_RC:-0}"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir, log


def _run(tmp_path: Path, script: Path, env_extra: dict[str, str], drop: tuple[str, ...] = ()):
    bin_dir, log = _stubs(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in FULL_ENV}
    env.update({k: v for k, v in FULL_ENV.items() if k not in drop})
    env.update(env_extra, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(ROOT))
    out = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)
    return out, (log.read_text().splitlines() if log.exists() else [])


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_stubs_record_a_launch_when_everything_is_set(tmp_path, name):
    """The recorders see the launch: the checks below can fail."""
    out, launched = _run(tmp_path, RECIPES / name, {})
    assert out.returncode == 0, out.stderr
    assert len(launched) == 1 and ("verl.trainer.main_ppo" in launched[0] or "verl.trainer.sft_trainer" in launched[0])
    assert "model.path=/models/qwen" in launched[0] or "actor_rollout_ref.model.path=/models/qwen" in launched[0]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_missing_variable_launches_nothing_and_is_named(tmp_path, name):
    var = SCRIPTS[name][1]
    out, launched = _run(tmp_path, RECIPES / name, {}, drop=(var,))
    assert out.returncode != 0 and launched == []
    assert f"environment variable {var} is not set" in out.stderr and "nothing launched" in out.stderr
    assert "Traceback" not in out.stderr


def test_multinode_without_nnodes_launches_nothing(tmp_path):
    out, launched = _run(tmp_path, RECIPES / "masked_grpo_multinode.sh", {}, drop=("NNODES",))
    assert out.returncode != 0 and launched == [] and "NNODES" in out.stderr


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_missing_args_file_launches_nothing_and_is_named(tmp_path, name):
    copy = tmp_path / "recipes"
    shutil.copytree(RECIPES, copy)
    args_file = copy / SCRIPTS[name][0]
    args_file.unlink()
    out, launched = _run(tmp_path, copy / name, {})
    assert out.returncode != 0 and launched == []
    assert f"error: {args_file}: No such file or directory" in out.stderr and "nothing launched" in out.stderr


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_failing_doctor_launches_nothing(tmp_path, name):
    out, launched = _run(tmp_path, RECIPES / name, {"STUB_DOCTOR_RC": "1"})
    assert out.returncode != 0 and launched == []
    assert "minio3 doctor failed" in out.stderr


def test_multinode_cluster_check_failure_launches_nothing(tmp_path):
    out, launched = _run(tmp_path, RECIPES / "masked_grpo_multinode.sh", {"STUB_CLUSTER_RC": "1"})
    assert out.returncode != 0 and launched == []
    assert "the Ray nodes differ" in out.stderr and "nothing launched" in out.stderr
