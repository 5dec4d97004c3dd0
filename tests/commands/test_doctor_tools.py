"""``minio3 doctor`` lists every registered image tool and where it is exposed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = "import json; from minio3_ext.commands.doctor import check_tools; print(json.dumps(check_tools()))"


def test_doctor_lists_an_entry_point_tool_and_every_place_it_reaches(plugin_tool_site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_tool_site), *sys.path])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines, problems = json.loads(proc.stdout.strip().splitlines()[-1])
    assert problems == []
    (line,) = [l for l in lines if "tool equalize " in l]
    assert "minio3_equalize:EqualizeTool" in line and "system prompt" in line
    assert "TRL ZoomEnvironment.equalize" in line and "ImageToolAdapter, config.tool equalize" in line
    assert any("tool zoom " in l for l in lines) and any("tool rotate " in l for l in lines)
