"""Registered image tools as verl ``BaseTool`` s.

One class serves every tool registered with the core (built in, or by another package
through the ``minio3_ext.tools`` entry point), by name::

    tools:
      - class_name: minio3_ext.verl.tool.ImageToolAdapter
        config: {type: native, tool: equalize}

``ZoomTool`` is the adapter fixed to ``zoom`` (the shipped ``config/zoom_tool.yaml``).
Load the YAML with ``actor_rollout_ref.rollout.multi_turn.tool_config_path=<abs path>``;
each tool named there is enabled in the ``minio3_agent`` loop's episode, and so named
in its system prompt: that entry is the one switch that brings a new image tool to verl.

Each dataset row names its raw image in ``extra_info.tools_kwargs.zoom.create_kwargs.image``
(see :func:`minio3_ext.verl.dataset.to_verl_row`). Tools always run on that raw image
(decoded once per process by the shared :func:`~minio3_ext.core.default_bank`) or on
raw earlier results, never on the resized copy verl's data path hands the agent loop.

Under the ``minio3_agent`` loop the loop has already stepped the trajectory's
:class:`~minio3_ext.core.Episode` and renders the observation itself. Under verl's
stock ``ToolAgentLoop`` the adapter drives an episode of its own: verl creates and
releases a tool instance around *every* call, so the per-trajectory episode lives on
verl's ``agent_data`` when one is passed (shared by every adapter), else on the
instance. Arguments verl parsed go to :meth:`Episode.act` as they are.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional
from uuid import uuid4

from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from minio3_ext.core import Episode, EpisodeConfig, ImageError, Observation, default_bank
from minio3_ext.core.tools import available_tools

from .options import episode_config

__all__ = ["ImageToolAdapter", "ZoomTool", "SESSION_ATTR", "observation_response", "TOOL_KEY"]

#: ``agent_data`` attribute holding the trajectory's episode when the tools drive it.
SESSION_ATTR = "minio3_zoom_session"
#: Tool YAML ``config`` key naming the registered image tool an adapter serves.
TOOL_KEY = "tool"
#: The agent loop counts turns and tokens, not the tool: these options are verl's.
_TOOL_LIMITS = dict(max_turns=1_000_000, max_context_tokens=None)
_LIMITS_SET_BY = {"max_turns": "actor_rollout_ref.rollout.multi_turn.max_assistant_turns",
                  "max_context_tokens": "actor_rollout_ref.rollout.response_length (or the minio3_agent "
                                        "loop's context_budget)"}
_VERL_KEYS = frozenset({"type"})


def observation_response(obs: Observation) -> ToolResponse:
    """A core observation as verl's tool response (verl puts the image before the text,
    so the text goes without its image slot)."""
    text = obs.text_only()
    return ToolResponse(text=text, image=[obs.image]) if obs.image is not None else ToolResponse(text=text)


class ImageToolAdapter(BaseTool):
    """A core image tool (``config: {tool: NAME}``) as a verl ``BaseTool``.

    Tool YAML ``config`` keys besides verl's ``type`` and ``tool``: any
    :class:`EpisodeConfig`, ``CropRules`` or ``ViewRules`` field (``dialect``, ``coords``,
    ``preset``, ``clamp``, ``max_images``, ``max_pixels``, ``min_pixels``…; a name both
    rule sets have is spelt ``crop_min_side`` / ``view_min_side``), except the turn and
    token budgets, which verl's rollout config sets. The ``minio3_agent`` loop takes them
    as defaults of its own episode options.
    """

    fixed_tool: ClassVar[str | None] = None

    def __init__(self, config: dict, tool_schema: Optional[OpenAIFunctionToolSchema] = None):
        config = dict(config or {})
        where = f"{type(self).__name__} tool config"
        name = config.get(TOOL_KEY, self.fixed_tool)
        registered = available_tools()
        if self.fixed_tool is not None and name != self.fixed_tool:
            raise ValueError(f"{where}: {type(self).__name__} serves {self.fixed_tool!r}, not {name!r}; "
                             "use minio3_ext.verl.tool.ImageToolAdapter for other tools")
        if not name:
            raise ValueError(f"{where}: set '{TOOL_KEY}' to a registered image tool; registered: {registered}")
        if name not in registered:
            raise ValueError(f"{where}: unknown image tool {name!r}; registered: {registered} "
                             "(install the package that registers it under the 'minio3_ext.tools' entry point)")
        self.tool_name: str = name
        #: Episode options of this YAML entry (the agent loop takes them as defaults).
        self.options: dict[str, Any] = {k: v for k, v in config.items() if k not in _VERL_KEYS | {TOOL_KEY}}
        tools = tuple(dict.fromkeys(["zoom", name, *registered]))  # every adapter can share one episode
        standalone = {**self.options, "tools": self.options.get("tools", tools)}
        standalone.setdefault("dialect", "hermes")  # verl's stock ToolAgentLoop speaks tool calls
        self.episode_config: EpisodeConfig = episode_config(standalone, where=where, ignore=_VERL_KEYS | {TOOL_KEY}, set_by=_LIMITS_SET_BY, **_TOOL_LIMITS)
        if tool_schema is None:
            (schema,) = [s for s in self.episode_config.dialect.tool_schemas() if s["function"]["name"] == name]
            tool_schema = OpenAIFunctionToolSchema.model_validate(schema)
        super().__init__(config, tool_schema)
        self.bank = default_bank()
        self._instances: dict[str, dict[str, Any]] = {}

    async def create(self, instance_id: Optional[str] = None, create_kwargs: Optional[dict] = None, **kwargs) -> tuple[str, ToolResponse]:
        instance_id = instance_id or uuid4().hex
        self._instances[instance_id] = {"image": (create_kwargs or {}).get("image"), "episode": None}
        return instance_id, ToolResponse()

    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs) -> tuple[ToolResponse, float, dict]:
        agent_data = kwargs.get("agent_data")
        try:
            episode = self._episode(instance_id, agent_data)
        except (ImageError, ValueError) as e:
            return ToolResponse(text=f"{self.tool_name} is unavailable: {e}"), 0.0, {"error": str(e)}
        if episode.done:
            return ToolResponse(text=f"{self.tool_name} is unavailable: the episode ended ({episode.termination_reason})"), 0.0, {}
        obs = episode.act(episode.parse_call(self.tool_name, parameters))
        if obs is None:
            return ToolResponse(text=f"{self.tool_name} is unavailable: the episode ended ({episode.termination_reason})"), 0.0, {}
        return observation_response(obs), 0.0, {"error": obs.error} if obs.error else {}

    async def release(self, instance_id: str, **kwargs) -> None:
        self._instances.pop(instance_id, None)

    def _episode(self, instance_id: str, agent_data: Any) -> Episode:
        """The trajectory's episode: on ``agent_data`` when given, else on the instance."""
        episode = getattr(agent_data, SESSION_ATTR, None)
        if episode is not None:
            return episode
        state = self._instances.get(instance_id)
        if state is None:
            raise ValueError(f"unknown {self.tool_name} tool instance {instance_id!r}: call create() first")
        if state["episode"] is None:
            path = state["image"] or _row_image(agent_data)
            if not path:
                raise ValueError("no raw image: the row needs extra_info.tools_kwargs.zoom.create_kwargs.image")
            state["episode"] = Episode(self.bank.get(path), self.episode_config, first_view=self.bank.first_view(path))
        if agent_data is not None:
            setattr(agent_data, SESSION_ATTR, state["episode"])
        return state["episode"]


def _row_image(agent_data: Any) -> str | None:
    """The row's raw image path (``tools_kwargs.zoom.create_kwargs.image``), for tools whose
    own ``tools_kwargs`` entry is absent."""
    tools_kwargs = getattr(agent_data, "tools_kwargs", None) or {}
    return ((tools_kwargs.get("zoom") or {}).get("create_kwargs") or {}).get("image")


class ZoomTool(ImageToolAdapter):
    """``zoom(bbox_2d, source)``: crop a region of the raw image or of an earlier crop."""

    fixed_tool = "zoom"
