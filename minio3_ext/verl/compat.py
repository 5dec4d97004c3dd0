"""The private verl 0.9.1 symbols the verl adapter touches, in one list (CONTRIBUTING:
upstream seams in the open).

Each :class:`Seam` names a module attribute, what the adapter expects of it (the
parameter names of a callable it overrides or calls, or that it exists) and who uses
it. ``tests/verl/test_compat.py`` checks every entry against the installed verl, and
``minio3 doctor`` can report :func:`problems`; a verl upgrade that moves one of them
fails there, not in the middle of a rollout.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

__all__ = ["Seam", "SEAMS", "problems", "resolve"]


@dataclass(frozen=True)
class Seam:
    module: str
    qualname: str
    """Dotted path inside ``module`` (``Class.method`` or ``name``)."""
    params: tuple[str, ...] | None
    """Parameter names (in order) of a callable; ``None`` when only presence matters."""
    used_by: str


_TAL = "verl.experimental.agent_loop.tool_agent_loop"
_AL = "verl.experimental.agent_loop.agent_loop"
SEAMS: tuple[Seam, ...] = (
    Seam(_TAL, "ToolAgentLoop._handle_pending_state", ("self", "agent_data", "sampling_params"),
         "agent_loop.MiniO3AgentLoop wraps it: builds the episode after verl's initial tokens"),
    Seam(_TAL, "ToolAgentLoop._handle_generating_state",
         ("self", "agent_data", "sampling_params", "ignore_termination"),
         "agent_loop.MiniO3AgentLoop wraps it: per-turn token cap, the episode reads the turn"),
    Seam(_TAL, "ToolAgentLoop._handle_processing_tools_state", ("self", "agent_data"),
         "agent_loop.MiniO3AgentLoop replaces it: the dialect's observation turn, never truncated"),
    Seam(_AL, "_agent_loop_registry", None, "verl.registration_problems reads the registered agent loop"),
    Seam("verl.experimental.agent_loop.tool_parser", "ToolParser._registry", None,
         "verl.registration_problems reads the registered tool parsers"),
)


def resolve(seam: Seam):
    """The object a seam names (raises ImportError/AttributeError when it is gone)."""
    obj = importlib.import_module(seam.module)
    for part in seam.qualname.split("."):
        obj = getattr(obj, part)
    return obj


def problems() -> list[str]:
    """Seams the installed verl no longer provides as expected (empty when all hold)."""
    out = []
    for seam in SEAMS:
        where = f"{seam.module}.{seam.qualname}"
        try:
            obj = resolve(seam)
        except (ImportError, AttributeError) as e:
            out.append(f"{where} is missing ({e}); used by {seam.used_by}")
            continue
        if seam.params is not None:
            params = tuple(inspect.signature(obj).parameters)
            if params != seam.params:
                out.append(f"{where} takes {params}, expected {seam.params}; used by {seam.used_by}")
    return out
