"""``minio3_agent``: verl's ``ToolAgentLoop`` driven by a core :class:`~minio3_ext.core.Episode`
(the zoom loop, its budgets, and over-turn masking).

Select it per row (``agent_name: minio3_agent``, what :func:`minio3_ext.verl.dataset.to_verl_row`
writes) or with ``actor_rollout_ref.rollout.agent.default_agent_loop=minio3_agent``.
Every rule of the conversation comes from the episode's dialect
(:attr:`EpisodeConfig.dialect`): the system prompt (replacing the row's), the stop
strings, how a turn is read, the observation text, its role and where its image sits.
The dialect follows ``actor_rollout_ref.rollout.multi_turn.format``:

- ``minio3`` / ``minio3_released``: the released model's ``<grounding>`` actions,
  observations as **user** turns (``minio3_released`` selects the released preset);
- ``hermes`` / ``minio3_hermes``: ``<tool_call>`` actions answered by ``tool`` messages
  (the tool schemas in the system turn are the dialect's, coordinate-aware), never
  truncated (verl's ``max_tool_response_length`` applies to verl's tool path only).

Options of the agent-loop YAML entry (``config/agent_loop.yaml``), over the options of
the image tools loaded from the tool YAML (a key set in both with different values is
an error naming both): any :class:`~minio3_ext.core.EpisodeConfig`/crop/view key
(``coords``, ``preset``, ``tools``, ``clamp``, ``view_min_side``…) except the three the
rollout config sets — ``max_turns`` (``multi_turn.max_assistant_turns``), ``dialect``
(``multi_turn.format``) and ``max_context_tokens`` (``context_budget`` or
``rollout.response_length``), each refused with a line saying so — ``score_in_loop``,
``overturn_penalty``, ``max_turn_tokens`` and ``chat_template`` (a shipped template
name or a path: the rollout renders turns with it; the hermes recipe sets the shipped
tool-capable ``qwen2_5_vl_tools.jinja``, since Qwen2.5-VL's stock template renders tool
turns as ``<|im_start|>tool`` without ``<tool_response>`` and ignores the tool schemas). Every image tool in the tool YAML
(:class:`~minio3_ext.verl.tool.ImageToolAdapter`) is enabled in the episode and named
in the system prompt.

Each assistant turn is decoded once (:class:`~minio3_ext.verl.tool_parser.TurnReader`
in verl's parser slot) and handed to the episode in one call, :meth:`Episode.step`,
which reads it once and returns the observation. The episode crops from the raw image and decides when
the trajectory ends and why. The model's first view is the core's (EXIF ignored, sides
snapped to 28 inside the row's pixel limits), shared by every rollout of a prompt, so
that any processor's ``smart_resize`` leaves it unchanged.

Each turn may generate at most ``min(max_turn_tokens, remaining response budget)``
tokens (``max_turn_tokens`` = 8,192, the paper's). A turn that does not fit in the
remaining budget ends the trajectory as ``context_limit`` (masked by default): it is
never scored on text cut out of the trained tokens.

The output's ``extra_fields`` record ``termination_reason``, ``is_overturn``,
``masked``, ``unscorable``, ``turns``, ``zooms``, ``invalid_actions`` and ``answer``.
Over-turn trajectories get an all-zero response mask, so ``masked_grpo`` and verl's
loss aggregation leave them out. Guard against the looping that masking no longer
punishes: ``overturn_penalty: p`` keeps over-turn trajectories in the
gradient with reward ``-p`` instead (``0`` = plain GRPO, the unmasked ablation). When a
reward function is configured (``reward.custom_reward_function``), the loop scores
in-loop, so that a trajectory the judge could not score is masked the same way
instead of scoring 0.

The context limit counts the response tokens (model turns + observations) against
verl's response length by default; ``context_budget: N`` (agent-loop YAML) counts the
whole context instead — prompt, responses and image tokens — and stops (masked,
``context_limit``) when it reaches ``N`` (the released rule: ``32768 - 2000``;
``config/agent_loop_released.yaml``). The per-turn cap stays
``min(max_turn_tokens, remaining response budget)`` either way.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

from PIL import Image
from verl.experimental.agent_loop.agent_loop import AgentLoopOutput, register
from verl.experimental.agent_loop.tool_agent_loop import AgentData, AgentState, ToolAgentLoop
from verl.trainer.ppo.reward import get_custom_reward_fn
from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

from minio3_ext.core import Episode, EpisodeConfig, ImageError, Observation, ViewRules, default_bank
from minio3_ext.core.chat import content_blocks
from minio3_ext.core.images import resize_for_model

from . import tool_parser
from .options import episode_config
from .reward import call_reward_fn
from .tool import ImageToolAdapter

__all__ = ["MiniO3AgentLoop", "NAME", "FORMATS", "first_view", "read_template"]

NAME = "minio3_agent"
#: ``multi_turn.format`` → (dialect, preset default).
FORMATS = {
    tool_parser.NAME: ("minio3", "strict"),
    tool_parser.RELEASED_NAME: ("minio3", "released"),
    "hermes": ("hermes", "strict"),
    tool_parser.HERMES_NAME: ("hermes", "strict"),
}
#: The paper's per-turn generation cap (tokens).
MAX_TURN_TOKENS = 8192
#: Constructor arguments verl passes to every agent loop; the rest are our options.
_BASE_KWARGS = frozenset({
    "trainer_config", "server_manager", "tokenizer", "processor", "dataset_cls", "data_config",
    "hf_model_type", "tools",
})
#: The loop's own YAML keys besides the episode options (named in error messages).
_LOOP_KEYS = frozenset({"score_in_loop", "overturn_penalty", "max_turn_tokens", "chat_template", "context_budget", "tools"})
#: Episode options the loop decides itself, and where a user sets them instead.
_SET_BY = {
    "max_turns": "actor_rollout_ref.rollout.multi_turn.max_assistant_turns",
    "dialect": "actor_rollout_ref.rollout.multi_turn.format",
    "max_context_tokens": "context_budget (this YAML) or actor_rollout_ref.rollout.response_length",
}

_views: OrderedDict[tuple, Image.Image] = OrderedDict()
_views_lock = threading.Lock()
_MAX_VIEWS = 64


def first_view(path: str, rules: ViewRules) -> Image.Image:
    """The model's first view of the raw image at ``path`` under ``rules``: the core's
    (EXIF ignored, LANCZOS, sides snapped to ``rules.factor``), one shared object per
    image and rules in the process, so the rollouts of a prompt hold it once."""
    bank = default_bank()
    if rules == bank.view_rules:
        return bank.first_view(path)
    key = (bank.key(path), rules)
    with _views_lock:
        view = _views.get(key)
        if view is not None:
            _views.move_to_end(key)
            return view
    view = resize_for_model(bank.get(path), rules, first=True)
    with _views_lock:
        view = _views.setdefault(key, view)
        while len(_views) > _MAX_VIEWS:
            _views.popitem(last=False)
    return view


@functools.lru_cache(maxsize=8)
def read_template(name: str) -> str:
    """A chat template: the name of one shipped in ``minio3_ext/verl/config`` (e.g.
    ``qwen2_5_vl_tools.jinja``) or a path to a Jinja file."""
    from . import config_path

    path = Path(name)
    if not path.is_absolute() and not path.is_file():
        path = config_path(name)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"{NAME}: chat_template {name!r}: cannot read {path}: {e}") from e


@register(NAME)
class MiniO3AgentLoop(ToolAgentLoop):
    """One trajectory (verl instantiates the loop per sample)."""

    #: Chat-template token that ends a turn (Qwen ChatML), added after a stop string.
    turn_end_token = "<|im_end|>"

    def __init__(
        self, *args: Any, score_in_loop: bool = True, overturn_penalty: float | None = None,
        max_turn_tokens: int = MAX_TURN_TOKENS, chat_template: str | None = None,
        context_budget: int | None = None, name: str | None = None, **kwargs: Any,
    ):
        options = {k: kwargs.pop(k) for k in list(kwargs) if k not in _BASE_KWARGS}
        super().__init__(*args, **kwargs)
        if chat_template is not None:
            # the rollout renders turns with this template (verl's data.apply_chat_template_kwargs path)
            self.apply_chat_template_kwargs = {**self.apply_chat_template_kwargs, "chat_template": read_template(chat_template)}
            self.continuous_token_builder = create_continuous_token_builder(
                self.tokenizer, hf_model_type=kwargs.get("hf_model_type"),
                chat_template_kwargs=self.apply_chat_template_kwargs, mm_processor_kwargs=self.mm_processor_kwargs,
                processor=self.processor,
            )
        where = f"{NAME} agent loop options"
        if self.tool_parser_name not in FORMATS:
            raise ValueError(f"{NAME}: actor_rollout_ref.rollout.multi_turn.format={self.tool_parser_name!r} is not a "
                             f"dialect of this loop; use one of {sorted(FORMATS)}")
        dialect, preset = FORMATS[self.tool_parser_name]
        merged, tools = self._tool_options(options, dialect)
        merged.setdefault("preset", preset)
        if not isinstance(max_turn_tokens, int) or max_turn_tokens < 1:
            raise ValueError(f"{where}: max_turn_tokens must be a positive integer, got {max_turn_tokens!r}")
        self.max_turn_tokens = max_turn_tokens
        self.episode_config: EpisodeConfig = episode_config(
            merged, where=where, set_by=_SET_BY, ignore=_LOOP_KEYS, dialect=dialect, tools=tools,
            max_turns=self.max_assistant_turns or EpisodeConfig.max_turns,
            # verl's own budget: response tokens (model output + observations); or the whole context
            max_context_tokens=context_budget or self.response_length,
        )
        self.dialect = dialect = self.episode_config.dialect
        # whatever parser ``format`` names: one decode per turn; the episode reads the text (step)
        self.tool_parser = tool_parser.TurnReader(self.tokenizer)
        # the system turn's tool block: the dialect's schemas (hermes), none for minio3
        self.tool_schemas = dialect.tool_schemas() if dialect.observation_role == "tool" else None
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
        self._pending: Observation | None = None

    def _tool_options(self, options: dict[str, Any], dialect: str) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The loop's episode options over the tool YAML's, and the tools to enable (the
        YAMLs' ``tools`` lists and every tool the tool YAML names). A tool YAML
        ``dialect`` must be the one ``multi_turn.format`` speaks."""
        others = sorted(name for name, t in self.tools.items() if not isinstance(t, ImageToolAdapter))
        if others:
            raise ValueError(f"{NAME}: tool(s) {others} in multi_turn.tool_config_path are not image tools; list "
                             "registered image tools with minio3_ext.verl.tool.ImageToolAdapter (config: {tool: NAME})")
        merged = dict(options)
        origin = {k: "the agent-loop YAML" for k in options}
        listed = list(merged.pop("tools", None) or ())
        for name, t in self.tools.items():
            for k, v in t.options.items():
                if k == "tools":
                    listed.extend(v)
                    continue
                if k == "dialect":
                    if v != dialect:
                        raise ValueError(f"{NAME}: option 'dialect' is {v!r} in the tool YAML entry of {name!r} but "
                                         f"actor_rollout_ref.rollout.multi_turn.format={self.tool_parser_name!r} "
                                         f"speaks {dialect!r}; remove it or set it to {dialect!r}")
                    continue
                if k in merged and merged[k] != v:
                    raise ValueError(f"{NAME}: option {k!r} is {merged[k]!r} in {origin[k]} but {v!r} in the "
                                     f"tool YAML entry of {name!r}; set it to one value")
                merged.setdefault(k, v)
                origin.setdefault(k, f"the tool YAML entry of {name!r}")
        tools = tuple(dict.fromkeys([*(t.tool_name for t in self.tools.values()), *listed]))
        return merged, tools

    # -- verl's entry point --------------------------------------------------
    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        self._row = kwargs
        stop = list(sampling_params.get("stop") or [])
        sampling_params = {**sampling_params, "stop": stop + [s for s in self.dialect.stop if s not in stop],
                           "include_stop_str_in_output": True}
        kwargs = {**kwargs, "raw_prompt": self._prompt(kwargs["raw_prompt"])}
        output = await super().run(sampling_params, **kwargs)
        return await self._finish(output)

    def _prompt(self, messages) -> list[dict[str, Any]]:
        """The row's messages with the dialect's system prompt (enabled tools, coordinates)."""
        messages = [dict(m) for m in messages]
        system = {"role": "system", "content": self.dialect.system_prompt()}
        if messages and messages[0].get("role") == "system":
            messages[0] = system
        else:
            messages.insert(0, system)
        return messages

    async def process_multi_modal_info(self, messages: list[dict]) -> dict:
        """The first view is the core's (see :func:`first_view`), not ``fetch_image``'s."""
        images, default = [], None
        for message in messages:
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                kind = part.get("type") if isinstance(part, Mapping) else None
                if kind in ("video", "audio") or (kind == "image" and not isinstance(part.get("image"), str)):
                    return await super().process_multi_modal_info(messages)
                if kind == "image":
                    default = default or self.episode_config.view
                    limits = {k: int(part[k]) for k in ("min_pixels", "max_pixels") if part.get(k) is not None}
                    try:
                        rules = dataclasses.replace(default, **limits)
                        images.append(await self.loop.run_in_executor(None, first_view, part["image"], rules))
                    except (ImageError, ValueError) as e:
                        raise ValueError(f"{NAME}: {self._row_name()}: {e}") from e
        return {"images": images} if images else {}

    # -- state handlers (wrap verl's; see compat.py) ---------------------------------
    async def _handle_pending_state(self, agent_data: AgentData, sampling_params: dict[str, Any]) -> AgentState:
        state = await super()._handle_pending_state(agent_data, sampling_params)
        path = self._raw_image_path(agent_data.tools_kwargs)
        view = agent_data.image_data[0] if agent_data.image_data else None
        try:
            raw = default_bank().get(path)
        except ImageError as e:
            raise ValueError(f"{NAME}: {self._row_name()}: {e}") from e
        self.episode = Episode(raw, self.episode_config, first_view=view)
        return state

    async def _handle_generating_state(
        self, agent_data: AgentData, sampling_params: dict[str, Any], ignore_termination: bool = False
    ) -> AgentState:
        episode = self.episode
        budget = self.response_length - len(agent_data.response_mask)
        sampling_params = {**sampling_params, "max_tokens": min(self.max_turn_tokens, budget)}
        state = await super()._handle_generating_state(agent_data, sampling_params, ignore_termination)
        if len(agent_data.response_ids) >= budget:
            # the turn ran into the response budget: what it says past the cut is not trained on,
            # so it is not read (no answer, no action) and the trajectory ends as context_limit
            episode.end("length", cut_turn=True)
            return AgentState.TERMINATED
        # decoded in verl's parser call, or here when verl returned before parsing (its own caps)
        text = self.tool_parser.text_of(agent_data.response_ids)
        # the whole context (prompt_ids holds prompt + responses, image tokens expanded) or the responses
        used = len(agent_data.prompt_ids) if self.context_budget else len(agent_data.response_mask)
        obs = episode.step(text, context_tokens=used)  # one core call: read the turn, act, observe
        if obs is None:
            return AgentState.TERMINATED
        if state == AgentState.TERMINATED and self._verl_budget_spent(agent_data):
            episode.end("turn_cap")  # verl's user-turn cap, which the episode does not track
            return AgentState.TERMINATED
        self._pending = obs
        self._close_assistant_turn(agent_data)
        return AgentState.PROCESSING_TOOLS

    async def _handle_processing_tools_state(self, agent_data: AgentData) -> AgentState:
        """The observation as the dialect renders it: its role, its text, the image at its slot;
        never truncated."""
        obs, self._pending = self._pending, None
        blocks = content_blocks(obs.parts())
        # a text-only turn as a string, as verl's own tool messages are
        content: Any = blocks[0]["text"] if len(blocks) == 1 and blocks[0]["type"] == "text" else blocks
        message: dict[str, Any] = {"role": self.dialect.observation_role, "content": content}
        previous = list(agent_data.messages)
        agent_data.messages.append(message)
        merged, response_mask, logprobs = await self.ct_merge_context_msg(
            previous, agent_data.messages, agent_data.prompt_ids, agent_data.response_mask,
            agent_data.response_logprobs or None, tools=self.tool_schemas,
        )
        if len(response_mask) >= self.response_length:
            self.episode.end("context_full")  # the observation did not fit in the response budget
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
        """Generation stopped at a stop string, before the end-of-turn token: add it
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
            episode.end("length" if len(output.response_mask) >= self.response_length else "stopped")
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
