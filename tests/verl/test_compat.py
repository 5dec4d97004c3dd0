"""The verl seams listed in ``minio3_ext.verl.compat`` exist with the expected signatures."""

from __future__ import annotations

import inspect

import pytest

from minio3_ext.verl import compat


@pytest.mark.parametrize("seam", sorted(compat.SEAMS))
def test_seam_is_present_with_the_expected_parameters(seam):
    params, _ = compat.SEAMS[seam]
    obj = compat.resolve(seam)
    if params is not None:
        assert tuple(inspect.signature(obj).parameters)[: len(params)] == params


def test_no_problems_reported():
    assert compat.problems() == []


def test_agent_data_carries_the_attributes_the_loop_uses():
    from verl.experimental.agent_loop.tool_agent_loop import AgentData

    source = inspect.getsource(AgentData.__init__)
    missing = [a for a in compat.AGENT_DATA_ATTRS if f"self.{a} " not in source and f"self.{a}:" not in source]
    assert not missing
    # the private schema attribute: set by the pending handler, read with a fallback when rendering
    from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop

    loop_source = inspect.getsource(ToolAgentLoop)
    assert f"agent_data.{compat.ACTIVE_TOOL_SCHEMAS} =" in loop_source
    assert f'getattr(agent_data, "{compat.ACTIVE_TOOL_SCHEMAS}"' in loop_source


def test_replay_buffer_state_the_filter_reads():
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

    buf = ReplayBuffer("sync", {}, None, "drop", {})
    for attr in compat.REPLAY_BUFFER_ATTRS:
        assert hasattr(buf, attr), attr


def test_a_moved_seam_is_named(monkeypatch):
    monkeypatch.setitem(compat.SEAMS, "verl.trainer.ppo.core_algos:no_such_function", (None, "nobody"))
    assert any("no_such_function" in p and "missing" in p for p in compat.problems())
