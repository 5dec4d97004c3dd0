"""The zoom tool as a verl ``BaseTool`` (SPEC 1.2, 1.3).

Loaded by class path from the shipped tool YAML (``config/zoom_tool.yaml``)::

    actor_rollout_ref.rollout.multi_turn.tool_config_path=<abs path of zoom_tool.yaml>

Each dataset row names its raw image in ``extra_info.tools_kwargs.zoom.create_kwargs.image``
(see :func:`minio3_ext.verl.dataset.to_verl_row`). Crops are always cut from that raw
image, decoded once per process by the shared :func:`~minio3_ext.core.default_bank`,
or from raw earlier crops, never from the resized copy verl's data path hands the
agent loop. The crop comes back resized for the model as ``ToolResponse.image``.

verl creates and releases a tool instance around *every* call, so the per-trajectory
state (raw observations for chained crops) lives on verl's ``agent_data`` when one is
passed, else on the instance. Under the ``minio3_agent`` loop the loop has already
stepped the trajectory's :class:`~minio3_ext.core.Episode`; the tool hands out that
observation.
"""

from __future__ import annotations

import json
from typing import Any, Optional
from uuid import uuid4

from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from minio3_ext.core import Episode, EpisodeConfig, ImageError, Observation, ZoomTool as CoreZoomTool, default_bank

from .options import episode_config

__all__ = ["ZoomTool", "PENDING_ATTR", "SESSION_ATTR", "observation_response"]

#: ``agent_data`` attribute where the minio3 agent loop leaves the observation of the turn.
PENDING_ATTR = "minio3_pending_observation"
#: ``agent_data`` attribute holding the trajectory's episode when the tool drives it.
SESSION_ATTR = "minio3_zoom_session"
_TOOL_LIMITS = dict(max_turns=1_000_000, max_context_tokens=None, dialect="hermes")


def observation_response(obs: Observation) -> ToolResponse:
    """A core observation as verl's tool response (image first, then the text)."""
    text = obs.text.replace("<image>", "(the image above)")
    return ToolResponse(text=text, image=[obs.image]) if obs.image is not None else ToolResponse(text=text)


class ZoomTool(BaseTool):
    """``zoom(bbox_2d, source)``: crop a region of the raw image or of an earlier crop.

    Tool YAML ``config`` keys besides verl's ``type``: any :class:`EpisodeConfig`,
    ``CropRules`` or ``ViewRules`` field (``coords``, ``clamp``, ``max_images``,
    ``max_pixels``, ``min_pixels``, ``max_aspect_ratio``…).
    """

    def __init__(self, config: dict, tool_schema: Optional[OpenAIFunctionToolSchema] = None):
        self.episode_config: EpisodeConfig = episode_config(
            config, where=f"{type(self).__name__} tool config", ignore={"type"}, **_TOOL_LIMITS
        )
        schema = tool_schema or OpenAIFunctionToolSchema.model_validate(CoreZoomTool().schema())
        super().__init__(config, schema)
        self.bank = default_bank()
        self._instances: dict[str, dict[str, Any]] = {}

    async def create(self, instance_id: Optional[str] = None, create_kwargs: Optional[dict] = None, **kwargs) -> tuple[str, ToolResponse]:
        instance_id = instance_id or uuid4().hex
        self._instances[instance_id] = {"image": (create_kwargs or {}).get("image"), "episode": None}
        return instance_id, ToolResponse()

    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs) -> tuple[ToolResponse, float, dict]:
        agent_data = kwargs.get("agent_data")
        pending = getattr(agent_data, PENDING_ATTR, None)
        if pending is not None:
            setattr(agent_data, PENDING_ATTR, None)
            return observation_response(pending), 0.0, {}
        try:
            episode = self._episode(instance_id, agent_data)
        except (ImageError, ValueError) as e:
            return ToolResponse(text=f"zoom is unavailable: {e}"), 0.0, {"error": str(e)}
        if episode.done:
            return ToolResponse(text=f"zoom is unavailable: the episode ended ({episode.termination_reason})"), 0.0, {}
        call = json.dumps({"name": "zoom", "arguments": parameters}, ensure_ascii=False, default=str)
        obs = episode.step(f"<tool_call>{call}</tool_call>")
        if obs is None:
            return ToolResponse(text=f"zoom is unavailable: the episode ended ({episode.termination_reason})"), 0.0, {}
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
            raise ValueError(f"unknown zoom tool instance {instance_id!r}: call create() first")
        if state["episode"] is None:
            path = state["image"]
            if not path:
                raise ValueError("no raw image: the row needs extra_info.tools_kwargs.zoom.create_kwargs.image")
            state["episode"] = Episode(self.bank.get(path), self.episode_config, first_view=self.bank.first_view(path))
        if agent_data is not None:
            setattr(agent_data, SESSION_ATTR, state["episode"])
        return state["episode"]
