"""Session-wide fixtures shared by every test folder.

- ``synthetic_jsonl`` / ``synthetic_rows``: a small synthetic visual-search dataset
  (4 rows, 640×480 images, seed 0) written once per session; rows have absolute
  image paths (see :mod:`minio3_ext.data.synthetic`).
- ``tiny_qwen_dir``: a random-weight tiny Qwen2.5-VL (model, tokenizer, processor)
  saved once per session; load it with ``minio3_ext.testing.load_tiny_qwen`` or any
  ``from_pretrained(path, local_files_only=True)``.

- ``vllm_venv_python``: the interpreter of the vLLM CPU venv (``.venv-vllm``; built by
  ``.ci/vllm_cpu_venv.sh`` when missing).
- ``run_doctor``: ``run_doctor(*hide)`` runs ``minio3 doctor`` (``cli.main``) in this
  process with the modules in ``hide`` made unimportable (a TRL-only install:
  ``run_doctor("verl")``); returns ``(exit code, stdout, stderr)``. The doctor's checks
  are fresh interpreters (``doctor._probe``); each distinct probe (code, arguments,
  environment) runs once per session, so the three doctor runs and ``check_verl()`` share
  them. ``tests/plugin_pkg``'s ``equalize`` tool is on the probes' ``PYTHONPATH``.

Treat these as read-only: copy a row (``dict(row)``) before mutating it, and write
to your own ``tmp_path`` rather than into these folders.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synthetic_jsonl(tmp_path_factory) -> Path:
    from minio3_ext.data.synthetic import generate

    return generate(tmp_path_factory.mktemp("synthetic"), n=4, seed=0, width=640, height=480)


@pytest.fixture(scope="session")
def synthetic_rows(synthetic_jsonl) -> list[dict]:
    from minio3_ext.data.synthetic import load_rows

    return load_rows(synthetic_jsonl)


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory) -> Path:
    from minio3_ext.testing import save_tiny_qwen

    return save_tiny_qwen(tmp_path_factory.mktemp("tiny_qwen"), seed=0)


@pytest.fixture(scope="session")
def plugin_tool_site(tmp_path_factory) -> Path:
    """``tests/plugin_pkg`` (a separate package registering the ``equalize`` image tool
    through the ``minio3_ext.tools`` entry point) pip-installed into its own folder.

    Put the folder on ``PYTHONPATH`` of a subprocess (or ``sys.path``) to have the tool
    installed there, exactly as a user's ``pip install`` would.
    """
    import subprocess
    import sys

    site = tmp_path_factory.mktemp("plugin_site")
    src = Path(__file__).parent / "plugin_pkg"
    build = tmp_path_factory.mktemp("plugin_build")
    import shutil

    shutil.copytree(src, build / "pkg")  # keep build artefacts out of the source tree
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(build / "pkg")], check=True)
    return site


@pytest.fixture(scope="session")
def vllm_venv_python() -> Path:
    """The interpreter of the vLLM CPU venv of ``minio3 smoke verl`` (``.venv-vllm``), made with
    ``.ci/vllm_cpu_venv.sh`` when it is missing (CI makes it first)."""
    import subprocess

    from minio3_ext.smoke.verl import default_python

    python = default_python()
    if not python.is_file():
        root = Path(__file__).resolve().parents[1]
        subprocess.run(["bash", str(root / ".ci" / "vllm_cpu_venv.sh")], check=True, timeout=1800, cwd=root)
    return python


@pytest.fixture(scope="session")
def _doctor_probes() -> dict:
    return {}


@pytest.fixture
def run_doctor(monkeypatch, plugin_tool_site, _doctor_probes):
    from minio3_ext.cli import main
    from minio3_ext.commands import doctor

    real_probe = doctor._probe
    root = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(plugin_tool_site), root, os.environ.get("PYTHONPATH", "")]))

    def probe_once(code: str, timeout: float, *argv: str):
        env = tuple(sorted((k, v) for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"))
        key = (code, timeout, argv, env)
        if key not in _doctor_probes:
            _doctor_probes[key] = real_probe(code, timeout, *argv)
        return _doctor_probes[key]

    monkeypatch.setattr(doctor, "_probe", probe_once)

    def run(*hide: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with monkeypatch.context() as m:
            for name in hide:
                m.setitem(sys.modules, name, None)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["doctor"])
        return code, out.getvalue(), err.getvalue()

    return run
