"""Contract of every private verl symbol the adapter touches (``minio3_ext.verl.compat``):
present in the installed verl, with the parameters the adapter overrides or calls, and
a moved seam is reported, not hit in the middle of a rollout."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from minio3_ext.verl import compat
from minio3_ext.verl.agent_loop import MiniO3AgentLoop

ADAPTER = Path(compat.__file__).parent


@pytest.mark.parametrize("seam", compat.SEAMS, ids=lambda s: s.qualname)
def test_every_seam_holds_in_the_installed_verl(seam):
    obj = compat.resolve(seam)
    if seam.params is not None:
        assert tuple(inspect.signature(obj).parameters) == seam.params


def test_no_problems_reported():
    assert compat.problems() == []


def test_the_overridden_handlers_keep_verls_signatures():
    for seam in compat.SEAMS:
        name = seam.qualname.rsplit(".", 1)[-1]
        if seam.qualname.startswith("ToolAgentLoop.") and name in vars(MiniO3AgentLoop):
            assert tuple(inspect.signature(getattr(MiniO3AgentLoop, name)).parameters) == seam.params


def test_every_private_verl_name_the_adapter_uses_is_listed():
    """A ``_name`` of verl used in minio3_ext/verl (overridden handler, registry) is a seam."""
    listed = {s.qualname.rsplit(".", 1)[-1] for s in compat.SEAMS}
    verl_private = set()
    for path in ADAPTER.glob("*.py"):
        text = path.read_text()
        verl_private |= set(re.findall(r"(?:super\(\)\.|ToolParser\.|import )(_[a-z]\w+)", text))
        verl_private |= {m for m in re.findall(r"def (_handle_\w+)", text)}
    assert verl_private and verl_private <= listed, verl_private - listed


def test_a_moved_seam_is_reported(monkeypatch):
    from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop

    monkeypatch.delattr(ToolAgentLoop, "_handle_processing_tools_state")
    (problem,) = compat.problems()
    assert "ToolAgentLoop._handle_processing_tools_state is missing" in problem and "MiniO3AgentLoop" in problem


def test_a_changed_signature_is_reported(monkeypatch):
    from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop

    async def changed(self, agent_data, sampling_params, *, extra=None):
        return None

    monkeypatch.setattr(ToolAgentLoop, "_handle_generating_state", changed)
    (problem,) = compat.problems()
    assert "_handle_generating_state takes" in problem and "ignore_termination" in problem


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


def test_the_parser_slot_the_loop_fills_is_verls_and_read_once_per_turn():
    from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop

    init = inspect.getsource(ToolAgentLoop.__init__)
    generating = inspect.getsource(ToolAgentLoop._handle_generating_state)
    assert f"self.{compat.PARSER_SLOT} = ToolParser.get_tool_parser(" in init
    assert generating.count(f"self.{compat.PARSER_SLOT}.extract_tool_calls(") == 1
    # the ids it parses are the turn's own list (TurnReader.text_of reuses that decode)
    assert re.search(rf"self\.{compat.PARSER_SLOT}\.extract_tool_calls\(\s*agent_data\.response_ids\b", generating)


def test_replay_buffer_state_the_filter_reads():
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

    buf = ReplayBuffer("sync", {}, None, "drop", {})
    for attr in compat.REPLAY_BUFFER_ATTRS:
        assert hasattr(buf, attr), attr


def test_a_missing_seam_is_named(monkeypatch):
    extra = compat.Seam("verl.trainer.ppo.core_algos", "no_such_function", None, "nobody")
    monkeypatch.setattr(compat, "SEAMS", compat.SEAMS + (extra,))
    (problem,) = compat.problems()
    assert "no_such_function is missing" in problem and "nobody" in problem
