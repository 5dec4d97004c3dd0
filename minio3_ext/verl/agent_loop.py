"""``minio3_agent``: verl's ``ToolAgentLoop`` driven by a core :class:`~minio3_ext.core.Episode`
(SPEC 1, 3).

Select it per row (``agent_name: minio3_agent``, what :func:`minio3_ext.verl.dataset.to_verl_row`
writes) or with ``actor_rollout_ref.rollout.agent.default_agent_loop=minio3_agent``.
The dialect follows ``actor_rollout_ref.rollout.multi_turn.format``:

- ``minio3``: the released model's ``<grounding>`` actions (generation stops at
  ``</grounding>``), observations as **user** turns;
- ``hermes``: ``<tool_call>`` actions answered by ``tool`` messages through verl's own
  tool path and the zoom ``BaseTool``.

Each assistant turn is fed to the episode, which parses the action tolerantly, crops
from the raw image and decides when the trajectory ends and why. The loop only wraps
verl's state handlers via ``super()``; its one own handler renders a minio3
observation as a user turn (verl's tool handler always writes ``tool`` messages).

The output's ``extra_fields`` record ``termination_reason``, ``is_overturn``,
``masked``, ``unscorable``, ``turns``, ``zooms``, ``invalid_actions`` and ``answer``.
Over-turn trajectories get an all-zero response mask, so ``masked_grpo`` and verl's
loss aggregation leave them out. Guard against the looping that masking no longer
punishes (SPEC 3): ``overturn_penalty: p`` keeps over-turn trajectories in the
gradient with reward ``-p`` instead (``0`` = plain GRPO, the unmasked ablation). When a reward function is configured
(``reward.custom_reward_function``), the loop scores in-loop, so that a trajectory
the judge could not score is masked the same way instead of scoring 0.

Options (agent-loop YAML entry, see ``config/agent_loop.yaml``): any
:class:`~minio3_ext.core.EpisodeConfig`/crop/view key, ``score_in_loop``,
``overturn_penalty`` and ``context_budget``. The context limit counts the response
tokens (model turns + observations) against verl's response length by default;
``context_budget: N`` counts the whole context instead — prompt, responses and image
tokens — and stops (masked, ``context_limit``) when it reaches ``N`` (the released
rule: ``32768 - 2000``; ``config/agent_loop_released.yaml``).
"""

from __future__ import annotations

from typing import Any, Mapping

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput, register
from verl.experimental.agent_loop.tool_agent_loop import AgentData, AgentState, ToolAgentLoop
from verl.experimental.agent_loop.tool_parser import FunctionCall
from verl.trainer.ppo.reward import get_custom_reward_fn

from minio3_ext.core import Episode, EpisodeConfig, ImageError, Observation, default_bank

from . import tool_parser
from .options import episode_config
from .reward import call_reward_fn
from .tool import PENDING_ATTR, SESSION_ATTR

__all__ = ["MiniO3AgentLoop", "NAME"]

NAME = "minio3_agent"
#: Constructor arguments verl passes to every agent loop; the rest are our options.
_BASE_KWARGS = frozenset({
    "trainer_config", "server_manager", "tokenizer", "processor", "dataset_cls", "data_config",
    "hf_model_type", "tools",
})


@register(NAME)
class MiniO3AgentLoop(ToolAgentLoop):
    """One trajectory (verl instantiates the loop per sample)."""

    #: Chat-template token that ends a turn (Qwen ChatML).
    turn_end_token = "<|im_end|>"

    def __init__(
        self, *args: Any, score_in_loop: bool = True, overturn_penalty: float | None = None,
        context_budget: int | None = None, name: str | None = None, **kwargs: Any,
    ):
        options = {k: kwargs.pop(k) for k in list(kwargs) if k not in _BASE_KWARGS}
        super().__init__(*args, **kwargs)
        self.dialect = "minio3" if self.tool_parser_name == tool_parser.NAME else "hermes"
        if "zoom" not in self.tools:
            raise ValueError(
                f"{NAME}: no 'zoom' tool is configured; set actor_rollout_ref.rollout.multi_turn.tool_config_path "
                "to the shipped zoom_tool.yaml (minio3_ext.verl.config_path('zoom_tool.yaml'))"
            )
        self.episode_config: EpisodeConfig = episode_config(
            options, where=f"{NAME} agent loop options", dialect=self.dialect,
            max_turns=self.max_assistant_turns or EpisodeConfig.max_turns,
            # verl's own budget: response tokens (model output + observations); or the whole context
            max_context_tokens=context_budget or self.response_length,
        )
        if context_budget is not None and context_budget < 1:
            raise ValueError(f"{NAME}: context_budget={context_budget!r} must be a positive token count")
        self.context_budget = context_budget
        self.reward_fn = get_custom_reward_fn(self.config) if score_in_loop else None
        if overturn_penalty is not None and (self.reward_fn is None or overturn_penalty < 0):
            raise ValueError(
                f"{NAME}: overturn_penalty={overturn_penalty!r} needs a value >= 0 and in-loop scoring "
                "(score_in_loop: true and reward.custom_reward_function.path set)"
            )
        self.overturn_penalty = overturn_penalty
        self.episode: Episode | None = None

    # -- verl's entry point --------------------------------------------------
    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        self._row = kwargs
        if self.dialect == "minio3":
            stop = list(sampling_params.get("stop") or [])
            sampling_params = {**sampling_params, "stop": stop + [tool_parser.STOP], "include_stop_str_in_output": True}
        output = await super().run(sampling_params, **kwargs)
        return await self._finish(output)

    # -- state handlers (wrap verl's) -------------------------------------------
    async def _handle_pending_state(self, agent_data: AgentData, sampling_params: dict[str, Any]) -> AgentState:
        if self.dialect == "minio3":  # the system prompt describes <grounding>; no Hermes tool block
            agent_data._active_tool_schemas = None
        state = await super()._handle_pending_state(agent_data, sampling_params)
        path = self._raw_image_path(agent_data.tools_kwargs)
        first_view = agent_data.image_data[0] if agent_data.image_data else None
        try:
            raw = default_bank().get(path)
        except ImageError as e:
            raise ValueError(f"{NAME}: {self._row_name()}: {e}") from e
        self.episode = Episode(raw, self.episode_config, first_view=first_view)
        setattr(agent_data, SESSION_ATTR, self.episode)
        return state

    async def _handle_generating_state(
        self, agent_data: AgentData, sampling_params: dict[str, Any], ignore_termination: bool = False
    ) -> AgentState:
        state = await super()._handle_generating_state(agent_data, sampling_params, ignore_termination)
        text = self.tokenizer.decode(agent_data.response_ids, skip_special_tokens=True)
        # the whole context (prompt_ids holds prompt + responses, image tokens expanded) or the responses
        used = len(agent_data.prompt_ids) if self.context_budget else len(agent_data.response_mask)
        obs = self.episode.step(text, context_tokens=used)
        if obs is None:
            agent_data.tool_calls = []
            return AgentState.TERMINATED
        if state == AgentState.TERMINATED and self._verl_budget_spent(agent_data):
            self.episode.terminate("turn_limit")  # verl's user-turn cap, which the episode does not track
            return AgentState.TERMINATED
        setattr(agent_data, PENDING_ATTR, obs)
        if self.dialect == "minio3":
            self._close_assistant_turn(agent_data)
        # exactly one call, always routed to the zoom tool, which hands out ``obs``
        # (also when verl's parser could not read a malformed call: an error observation)
        first = agent_data.tool_calls[0] if agent_data.tool_calls else None
        agent_data.tool_calls = [FunctionCall(name="zoom", arguments="{}", tool_call_id=first.tool_call_id if first else None)]
        return AgentState.PROCESSING_TOOLS

    async def _handle_processing_tools_state(self, agent_data: AgentData) -> AgentState:
        if self.dialect == "hermes":
            state = await super()._handle_processing_tools_state(agent_data)
        else:
            state = await self._observe_as_user_turn(agent_data)
        if state == AgentState.TERMINATED and not self.episode.done:
            self.episode.terminate("context_limit")  # the observation did not fit in the response budget
        return state

    async def _observe_as_user_turn(self, agent_data: AgentData) -> AgentState:
        """The minio3 dialect: the observation (text around the crop) as a user turn."""
        obs: Observation = getattr(agent_data, PENDING_ATTR)
        setattr(agent_data, PENDING_ATTR, None)
        before, _, after = obs.text.partition("<image>")
        if obs.image is None:
            content: Any = obs.text
        else:
            content = [{"type": "text", "text": before}, {"type": "image", "image": obs.image}]
            if after:
                content.append({"type": "text", "text": after})
        previous = list(agent_data.messages)
        agent_data.messages.append({"role": "user", "content": content})
        merged, response_mask, logprobs = await self.ct_merge_context_msg(
            previous, agent_data.messages, agent_data.prompt_ids, agent_data.response_mask,
            agent_data.response_logprobs or None, tools=None,
        )
        if len(response_mask) >= self.response_length:
            return AgentState.TERMINATED
        agent_data.prompt_ids = merged.token_ids
        agent_data.response_mask = response_mask
        if agent_data.response_logprobs:
            agent_data.response_logprobs = logprobs or []
        if obs.image is not None:
            agent_data.image_data = list(agent_data.image_data or []) + [obs.image]
        agent_data.user_turns += 1
        return AgentState.GENERATING

    # -- helpers -----------------------------------------------------------------
    def _close_assistant_turn(self, agent_data: AgentData) -> None:
        """Generation stopped at ``</grounding>``, before the end-of-turn token: add it
        (not generated by the policy, so mask 0) so the observation opens a proper turn."""
        end_id = self.tokenizer.convert_tokens_to_ids(self.turn_end_token)
        if agent_data.prompt_ids and agent_data.prompt_ids[-1] == end_id:
            return
        agent_data.prompt_ids = agent_data.prompt_ids + [end_id]
        agent_data.response_mask = agent_data.response_mask + [0]
        if agent_data.response_logprobs:
            agent_data.response_logprobs = agent_data.response_logprobs + [0.0]

    def _verl_budget_spent(self, agent_data: AgentData) -> bool:
        return bool(
            len(agent_data.response_mask) >= self.response_length
            or (self.max_assistant_turns and agent_data.assistant_turns >= self.max_assistant_turns)
            or (self.max_user_turns and agent_data.user_turns >= self.max_user_turns)
        )

    def _raw_image_path(self, tools_kwargs: Mapping[str, Any]) -> str:
        path = ((tools_kwargs or {}).get("zoom") or {}).get("create_kwargs", {}).get("image")
        if not path:
            raise ValueError(
                f"{NAME}: {self._row_name()} has no raw image path in "
                "extra_info.tools_kwargs.zoom.create_kwargs.image (see minio3_ext.verl.dataset.to_verl_row)"
            )
        return path

    def _row_name(self) -> str:
        extra = self._row.get("extra_info") or {}
        return f"row index={extra.get('index')!r} doc_id={extra.get('doc_id')!r}"

    async def _finish(self, output: AgentLoopOutput) -> AgentLoopOutput:
        """Record the episode, score in-loop, and mask excluded trajectories."""
        episode = self.episode
        if not episode.done:  # verl stopped without a parsed final turn (e.g. response cap)
            episode.terminate("context_limit" if len(output.response_mask) >= self.response_length else "no_answer")
        summary = episode.summary()
        penalised = summary["is_overturn"] and self.overturn_penalty is not None
        output.extra_fields.update({
            "termination_reason": summary["termination_reason"],
            "is_overturn": summary["is_overturn"],
            "masked": summary["is_overturn"] and not penalised,
            "unscorable": False,
            "turns": summary["turns"],
            "zooms": summary["zooms"],
            "invalid_actions": summary["invalid_actions"],
            "answer": summary["answer"],
        })
        if self.reward_fn is not None:
            result = await self._score(output, penalty=-self.overturn_penalty if penalised else None)
            if result.get("unscorable"):  # never a silent 0: out of the gradient like over-turn rows
                output.extra_fields["unscorable"] = output.extra_fields["masked"] = True
        if output.extra_fields["masked"]:
            output.response_mask = [0] * len(output.response_mask)
        return output

    async def _score(self, output: AgentLoopOutput, penalty: float | None = None) -> dict[str, Any]:
        row = self._row
        solution = self.tokenizer.decode(output.response_ids, skip_special_tokens=True)
        extra_info = {**(row.get("extra_info") or {}), **output.extra_fields, "raw_prompt": row.get("raw_prompt")}
        result = await call_reward_fn(  # sync or async, as verl's reward managers accept
            self.reward_fn, data_source=row.get("data_source"), solution_str=solution,
            ground_truth=(row.get("reward_model") or {}).get("ground_truth"), extra_info=extra_info,
        )
        if penalty is not None:
            result["score"] = penalty
        output.reward_score = float(result["score"])
        output.extra_fields["reward_extra_info"] = result
        return result
