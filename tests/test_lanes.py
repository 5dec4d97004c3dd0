"""Two test lanes (issue 20, section 3): ``pytest`` is the fast lane, ``pytest -m slow`` the rest,
``.ci/run`` runs both, and ``.ci/check_lanes.py`` fails when a test is in neither lane or in both."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / ".ci" / "check_lanes.py"


def test_plain_pytest_deselects_the_slow_lane():
    addopts = shlex.split(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"])
    assert addopts[addopts.index("-m") + 1] == "not slow" and addopts.count("-m") == 1
    assert "-k" not in addopts and "no:warnings" not in " ".join(addopts)  # nothing else filters the lane


def test_ci_runs_the_lane_check_then_both_lanes():
    script = (ROOT / ".ci" / "run").read_text()
    check, fast, slow = (script.index(s) for s in ("python .ci/check_lanes.py", "python -m pytest ||",
                                                   "python -m pytest -m slow ||"))
    assert check < fast < slow and "fast lane (pytest) took" in script and "slow lane (pytest -m slow) took" in script
    assert script.rstrip().endswith("exit $status")


def _project(tmp_path: Path, addopts: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.pytest.ini_options]\naddopts = "--strict-markers {addopts}"\nmarkers = ["slow: x", "gpu: y"]\n')
    (tmp_path / "test_toy.py").write_text(
        "import pytest\n\ndef test_quick():\n    pass\n\n@pytest.mark.slow\ndef test_long():\n    pass\n\n"
        "@pytest.mark.gpu\ndef test_on_gpu():\n    pass\n")
    return tmp_path


def test_check_names_a_test_that_no_lane_runs(tmp_path):
    # the fast lane also drops `gpu` tests, which `-m slow` does not pick up: test_on_gpu runs nowhere
    proc = subprocess.run([sys.executable, str(CHECK), str(_project(tmp_path, "-m 'not slow and not gpu'"))],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 test(s) in neither lane: test_toy.py::test_on_gpu" in proc.stdout


@pytest.mark.slow
def test_this_suites_lanes_hold_every_test_once():
    proc = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "each exactly once" in proc.stdout
