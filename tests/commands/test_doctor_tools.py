"""``minio3 doctor`` lists every registered image tool and where it is exposed."""

from __future__ import annotations

import pytest


@pytest.mark.slow  # the doctor's three fresh-interpreter probes (~25 s)
def test_doctor_lists_an_entry_point_tool_and_every_place_it_reaches(run_doctor):
    code, out, err = run_doctor()  # tests/plugin_pkg's equalize tool is installed for the probes
    assert code == 0, out + err
    lines = out.splitlines()
    (line,) = [l for l in lines if "tool equalize " in l]
    assert "minio3_equalize:EqualizeTool" in line and "system prompt" in line
    assert "TRL ZoomEnvironment.equalize" in line and "ImageToolAdapter, config.tool equalize" in line
    assert any("tool zoom " in l for l in lines) and any("tool rotate " in l for l in lines)
