"""The README's set-up commands on a fresh machine (issue 14, item 10): without Chromium
the browser test skips with its reason outside CI and fails inside CI."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pytest_without_chromium(tmp_path, ci):
    # a PATH holding only the interpreter's folder: no chromium on it
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(bin_dir)
    if ci:
        env["CI"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "tests/eval/test_eval_report.py", "-k", "chromium",
                           "-p", "no:cacheprovider", "-q"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow  # two pytest runs in fresh interpreters (~6 s)
def test_browser_test_skips_with_a_reason_outside_ci_and_is_required_in_ci(tmp_path):
    local = _pytest_without_chromium(tmp_path / "local", ci=False)
    assert local.returncode == 0, local.stdout[-2000:]
    assert "SKIPPED" in local.stdout and "chromium is not installed" in local.stdout
    ci = _pytest_without_chromium(tmp_path / "ci", ci=True)
    assert ci.returncode != 0 and "chromium is required when CI is set" in ci.stdout


def test_ci_script_exports_ci_and_installs_from_the_clone():
    script = (ROOT / ".ci" / "run").read_text()
    assert "export CI=1" in script
    assert 'pip install -e ".[dev]"' in script
