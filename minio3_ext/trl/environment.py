"""Zoom environment for TRL's multi-turn tool loop (``GRPOTrainer(environment_factory=...)``).

TRL creates one instance per rollout, calls ``reset(**row)`` with the dataset row, and
exposes every public method except ``reset``/``get_reward`` as a tool, its schema read
from the signature and docstring. ``ZoomEnvironment`` has one public method per tool
enabled in its :class:`~minio3_ext.core.EpisodeConfig` (``zoom`` always, plus e.g.
``EpisodeConfig(dialect=get_dialect("hermes", tools=("zoom", "equalize")))`` for a tool registered through the
``minio3_ext.tools`` entry point: that is the one switch), each described by the
episode's dialect (zoom's box in the config's coordinate system). Each drives a core
:class:`~minio3_ext.core.Episode` with the arguments TRL already parsed
(``Episode.act(episode.parse_call(...))``) and returns the new image as an image content
block, which TRL puts into the tool message, hands to generation and keeps for the
training forward.

One assistant message is one turn, whatever the number of calls in it. Under
:class:`~minio3_ext.trl.MaskedGRPOTrainer` (which hands each environment its rollout's
live message list, the ``completions`` TRL passes to its tool loop) a tool method acts on
the name and arguments TRL hands it; the message TRL is running the call for
(:func:`minio3_ext.trl.compat.calling_message`) only supplies the turn's text and
whether this is its first call: the core reads the turn
(:meth:`~minio3_ext.core.Episode.parse_turn` of that text and this call: an
``<answer>`` written before the call ends the episode; with the released preset's
``grounding_wins`` a zoom call of the turn wins over another call), the first call TRL
hands over runs, later ones get an error note. A call TRL cannot route (an unknown tool name,
arguments that are not an object) never reaches the environment: TRL answers it itself.
Under a stock ``GRPOTrainer`` each call is a turn while the rollout runs, and the episode
is replayed from the messages when the rollout is scored, so the record and the reward
still follow the core's reading.

``reset`` returns the model-facing first view (from the shared raw-image bank, decoded
once per path) and the question, appended to the row's last user message, so the
dataset itself carries no pixels::

    from functools import partial
    env_factory = partial(ZoomEnvironment, config=EpisodeConfig(max_turns=6, dialect="hermes"))
    trainer = MaskedGRPOTrainer(model, reward_funcs=[AccuracyReward()], args=MaskedGRPOConfig(max_turns=6),
                                train_dataset=grpo_dataset(rows), environment_factory=env_factory)

Both dialects work: TRL hands the environment parsed arguments either way; with
``dialect="minio3"`` pair it with :func:`minio3_ext.trl.templates.use_minio3_dialect`,
which renders and parses the released ``<grounding>`` calls and shows observations as
user turns.

Rows need ``image_path`` (or ``images``: a list of paths, first one used) and
``question`` (or ``problem``); see :func:`minio3_ext.trl.data.grpo_rows`.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any, Literal, Mapping, Sequence

from ..core.actions import Answer
from ..core.chat import content_blocks, slot_blocks
from ..core.dialect import Dialect
from ..core.episode import Episode, EpisodeConfig, Observation
from ..core.images import ImageBank, default_bank, resize_for_model
from .compat import calling_message

__all__ = [
    "ZoomEnvironment", "IMAGE_PATH_KEY", "row_image_path", "turn_text", "turn_calls",
    "bind_conversations", "close_episode",
]

IMAGE_PATH_KEY = "image_path"
"""Row column with the raw image path (not ``image``/``images``: TRL would treat those as pixels)."""


def row_image_path(row: dict[str, Any]) -> str:
    path = row.get(IMAGE_PATH_KEY)
    if path is None and row.get("images"):
        images = row["images"]
        path = images[0] if isinstance(images, (list, tuple)) else images
    if not isinstance(path, str) or not path:
        raise ValueError(f"ZoomEnvironment.reset: row {row.get('doc_id', '?')!r} has no '{IMAGE_PATH_KEY}' (a raw image path)")
    return path


def _question(row: dict[str, Any]) -> str:
    question = row.get("question") or row.get("problem")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"ZoomEnvironment.reset: row {row.get('doc_id', '?')!r} has no 'question' text")
    return question


# -- TRL messages as core turns ---------------------------------------------------------------

def message_text(message: Mapping[str, Any]) -> str:
    """Text of a chat message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return ""


def turn_text(message: Mapping[str, Any], dialect: Dialect) -> str:
    """The text of an assistant turn without its parsed tool calls: the thinking TRL's
    response parser moved into ``reasoning_content`` (rendered back by the dialect), then the content."""
    reasoning = message.get("reasoning_content")
    text = message_text(message)
    return dialect.render_thought(reasoning) + text if isinstance(reasoning, str) and reasoning else text


def turn_calls(message: Mapping[str, Any]) -> list[tuple[Any, Any]]:
    """``[(name, arguments), ...]`` of an assistant message's parsed tool calls, in order."""
    out = []
    for call in message.get("tool_calls") or ():
        fn = call.get("function", call) if isinstance(call, Mapping) else {}
        out.append((fn.get("name"), fn.get("arguments")))
    return out


# -- one method per enabled tool ----------------------------------------------------------------

_JSON_TYPES = {"integer": int, "number": float, "string": str, "boolean": bool, "object": dict}


def _hint(prop: Mapping[str, Any]) -> Any:
    if prop.get("enum"):
        return Literal[tuple(prop["enum"])]
    kind = prop.get("type")
    if kind == "array":
        item = _JSON_TYPES.get((prop.get("items") or {}).get("type"))
        return list[item] if item is not None else list
    return _JSON_TYPES.get(kind, Any)


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


def _tool_method(schema: Mapping[str, Any]):
    """A method whose signature and Google-style docstring describe ``schema`` (an OpenAI
    function schema from the dialect), so transformers' ``get_json_schema`` rebuilds it. It
    takes any keyword arguments: the episode, not Python, judges what the model wrote."""
    fn = schema["function"]
    name = fn["name"]
    props = dict(fn.get("parameters", {}).get("properties", {}))
    required = list(fn.get("parameters", {}).get("required", []))
    order = [k for k in props if k in required] + [k for k in props if k not in required]

    def tool(self, *args: Any, **arguments: Any):
        if len(args) > len(order):
            raise TypeError(f"{name}() takes {len(order)} arguments, got {len(args)} positional")
        return self._call(name, {**dict(zip(order, args)), **arguments})

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    doc_args = []
    for key in order:
        default = inspect.Parameter.empty if key in required else ("original_image" if key == "source" else None)
        annotations[key] = _hint(props[key])
        params.append(inspect.Parameter(key, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotations[key]))
        doc_args.append(f"    {key}: {_one_line(props[key].get('description') or key)}")
    annotations["return"] = list | str
    tool.__name__ = tool.__qualname__ = name
    tool.__signature__ = inspect.Signature(params, return_annotation=list | str)
    tool.__annotations__ = annotations
    tool.__doc__ = (f"{_one_line(fn.get('description') or name)}\n\nArgs:\n" + "\n".join(doc_args)
                    + "\n\nReturns:\n    The result image (the next observation), or a message explaining why the call failed.")
    return tool


@lru_cache(maxsize=64)
def _environment_class(base: type, dialect: Dialect) -> type:
    methods = {s["function"]["name"]: _tool_method(s) for s in dialect.tool_schemas()}
    clash = sorted(set(methods) & {"reset", "get_reward"} | {n for n in methods if n.startswith("_")})
    if clash:
        raise ValueError(f"ZoomEnvironment: tool name(s) {clash} cannot be TRL tools (reserved or private)")
    return type(base.__name__, (base,), {**methods, "__module__": base.__module__, "__doc__": base.__doc__,
                                         "_tool_names": tuple(methods)})


class ZoomEnvironment:
    """One rollout's visual-search state. Its public methods are TRL tools, one per enabled
    tool of the episode config (built per config); keep helpers private."""

    _tool_names: tuple[str, ...] = ()

    def __new__(cls, config: EpisodeConfig | None = None, bank: ImageBank | None = None):
        config = config or EpisodeConfig(dialect="hermes", max_context_tokens=None)
        if cls._tool_names:  # already a per-config class
            cls = cls.__mro__[1]
        return object.__new__(_environment_class(cls, config.dialect))

    def __init__(self, config: EpisodeConfig | None = None, bank: ImageBank | None = None):
        self._config = config or EpisodeConfig(dialect="hermes", max_context_tokens=None)
        self._bank = bank if bank is not None else default_bank()  # an empty bank is falsy (__len__)
        self._episode: Episode | None = None
        self._row: dict[str, Any] = {}
        self._start: tuple[Any, Any] | None = None
        self._messages: list | None = None
        """The rollout's live message list under MaskedGRPOTrainer (:func:`bind_conversations`)."""
        self._next = 0  # index into the conversation of the first message not yet consumed
        self._replay = False
        self.extra_calls = 0
        """Calls after the first one of an assistant message (not run: one action per turn)."""

    @property
    def config(self) -> EpisodeConfig:
        return self._config

    @property
    def dialect(self) -> Dialect:
        return self._config.dialect

    @property
    def tools(self) -> tuple[str, ...]:
        """Names of the tool methods this environment exposes."""
        return self._tool_names

    @property
    def episode(self) -> Episode | None:
        """The current episode (``None`` before the first ``reset``)."""
        return self._episode

    @property
    def row(self) -> dict[str, Any]:
        return self._row

    def reset(self, **row: Any) -> list[dict[str, Any]]:
        """Start an episode on the row's image; return the first view and the question."""
        path = row_image_path(row)
        raw = self._bank.get(path)
        if self._bank.view_rules == self._config.view:
            view = self._bank.first_view(path)  # resized once per path, shared by all rollouts
        else:
            view = resize_for_model(raw, self._config.view, first=True)
        self._start = (raw, view)
        self._episode = Episode(raw, self._config, first_view=view)
        self._row = row
        self._messages, self._next, self._replay, self.extra_calls = None, 0, False, 0
        d = self.dialect
        return slot_blocks(d, d.user_prompt(_question(row)), [view])

    # -- the tool calls ---------------------------------------------------------------------
    def _call(self, name: str, arguments: dict[str, Any]) -> list[dict[str, Any]] | str:
        """One call as TRL hands it: the tool's ``name`` and the ``arguments`` TRL parsed."""
        episode = self._episode
        if episode is None:
            raise RuntimeError(f"ZoomEnvironment.{name} called before reset")
        messages = self._messages
        if messages is None:  # a stock trainer: each call is a turn (replayed per message at the end)
            self._replay = True
            if episode.done:
                return self._ended()
            obs = episode.act(episode.parse_call(name, arguments), call=(name, arguments))
            return self._ended() if obs is None else self._content(obs)
        current = calling_message(messages)
        if current < self._next:  # the message's action was taken already
            self.extra_calls += 1
            return self.dialect.error_text(max(episode.turns - 1, 0), "only the first action of a turn is run; "
                                           "make one call per turn", name)
        self._consume_until(messages, current)
        self._next = current + 1
        if episode.done:
            return self._ended()
        text = turn_text(messages[current], self.dialect)
        calls = [(name, arguments)]
        if self.dialect.grounding_wins and name != "zoom":  # the released preset: a zoom anywhere in the turn wins
            calls += [c for c in self._routed(turn_calls(messages[current])) if c[0] == "zoom"][:1]
        obs = episode.act(episode.parse_turn(text, calls), text=text, call=(name, arguments))
        return self._ended() if obs is None else self._content(obs)

    def _ended(self) -> str:
        episode = self._episode
        return self.dialect.error_text(max(episode.turns - 1, 0), f"the episode has ended ({episode.termination_reason}); "
                                       "no more tool calls are run, give your final answer")

    @staticmethod
    def _content(obs: Observation) -> list[dict[str, Any]] | str:
        return obs.text if obs.image is None else content_blocks(obs.parts())

    def _consume(self, conversation: Sequence[Mapping[str, Any]], index: int) -> Observation | None:
        """One assistant message the environment was not handed a call of → one ``Episode.act``
        (the calls it would have been handed first, as in :meth:`_call`)."""
        message = conversation[index]
        episode = self._episode
        self._next = index + 1
        text = turn_text(message, self.dialect)
        return episode.act(episode.parse_turn(text, self._routed(turn_calls(message))), text=text)

    def _routed(self, calls: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        """The calls TRL hands this environment (a tool of it, arguments an object), or all of
        them when TRL would route none (the core then says why the turn's call failed)."""
        routed = [c for c in calls if c[0] in self._tool_names and isinstance(c[1], Mapping)]
        return routed or calls

    def _consume_until(self, conversation: Sequence[Mapping[str, Any]], stop: int) -> None:
        """Consume the assistant messages before ``stop`` the environment has not seen (e.g. a
        turn whose only call named a tool TRL does not know, so TRL answered it itself)."""
        for i in range(self._next, stop):
            if self._episode.done:
                break
            if conversation[i].get("role") == "assistant":
                self._consume(conversation, i)
        self._next = max(self._next, stop)


def _last_assistant(messages: Sequence[Mapping[str, Any]]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "assistant":
            return i
    return -1


def bind_conversations(environments: Sequence[Any] | None, completions: Sequence[Any]) -> None:
    """Hand each :class:`ZoomEnvironment` its rollout's live message list: ``completions[i]``,
    the argument TRL's tool loop receives and extends in place, so that a call knows which
    assistant message it belongs to (:func:`minio3_ext.trl.compat.calling_message`).
    Called by :class:`~minio3_ext.trl.MaskedGRPOTrainer` before TRL's tool loop."""
    for env, messages in zip(environments or (), completions):
        if isinstance(env, ZoomEnvironment) and env._episode is not None and isinstance(messages, list):
            env._messages = messages


def close_episode(env: ZoomEnvironment, messages: Sequence[Mapping[str, Any]] | str, *, truncated: bool = False) -> Episode:
    """End ``env``'s episode at the end of its TRL rollout and return it (idempotent).

    The assistant messages the episode has not consumed are consumed (one ``act`` each);
    a rollout TRL ended while the episode would go on gets the reason TRL's loop implies:
    a final turn cut by ``max_completion_length`` without an answer, or a tool result
    TRL rolled back because it did not fit, is ``context_limit``; calls TRL did not run
    because its tool-iteration cap was reached are ``turn_limit``; a turn TRL read as
    plain text (e.g. a call it could not parse) is ``no_answer``.
    """
    episode = env._episode
    if episode is None:
        raise RuntimeError("close_episode: the environment was never reset")
    if isinstance(messages, str):
        messages = [{"role": "assistant", "content": messages}]
    if episode.done and not env._replay:
        return episode
    if env._replay:  # a stock trainer ran the calls one by one: read the rollout again, one act per message
        raw, view = env._start
        episode = env._episode = Episode(raw, env._config, first_view=view)
        env._next, env._replay = 0, False
    last = _last_assistant(messages)
    if last < 0:
        episode.end("length" if truncated else "stopped")
        return episode
    env._consume_until(messages, last)
    if episode.done:
        return episode
    final = messages[last]
    pending = bool(final.get("tool_calls"))
    if env._next <= last:  # TRL did not hand the final message to the environment
        text = turn_text(final, env.dialect)
        action = episode.parse_turn(text, env._routed(turn_calls(final)))
        if truncated and not isinstance(action, Answer):
            episode.end("length")
            return episode
        env._next = last + 1
        episode.act(action, text=text)
        if not episode.done:
            episode.end("turn_cap" if pending else "stopped")
        return episode
    # the environment ran the final message's call, but TRL went no further: it rolled the
    # result back (too long) or the turn after it was cut to nothing
    episode.end("context_full")
    return episode

