"""One visual-search episode as a state machine.

Feed it the model's turns with :meth:`Episode.step` (text; the episode's dialect parses
it) or :meth:`Episode.act` (an action a framework already parsed); it runs the tool on
the raw source image, returns the next observation, and ends the episode with a
recorded ``termination_reason`` when the policy answers, stops, or a budget runs out.
Both framework adapters drive this class and ask it, not a copy, when an episode ended.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable, Mapping

from PIL import Image

from .actions import ORIGINAL, ActionError, Answer, Invalid, ToolCall, Zoom
from .crops import CropRules
from .dialect import DIALECTS, Dialect, get_dialect, interleave
from .images import ViewRules, resize_for_model
from .termination import OVERTURN_REASONS, TERMINATION_REASONS, recorded_answer, stop_reason
from .tools import ZoomTool, get_tool

__all__ = [
    "TERMINATION_REASONS", "OVERTURN_REASONS", "DIALECT_OPTIONS", "EpisodeConfig", "Observation", "TurnRecord",
    "Exchange", "Episode",
]



#: The dialect's options (:class:`~minio3_ext.core.dialect.Dialect` fields besides its
#: name): set on the dialect (``dialect=get_dialect("hermes", coords="pixel")``), not on
#: :class:`EpisodeConfig`; flat option surfaces (YAML, recipes) route them there.
DIALECT_OPTIONS = tuple(f.name for f in fields(Dialect) if f.init and f.name != "name")


@dataclass(frozen=True)
class EpisodeConfig:
    """Budgets and rules of an episode. Defaults follow the released training code."""

    max_turns: int = 6
    """Assistant turns allowed (6 at training, up to 32 at test time)."""
    max_images: int = 32
    """Images in the context, the original included."""
    max_context_tokens: int | None = 32_768
    """Context budget in tokens; ``None`` disables the check."""
    dialect: Dialect = get_dialect()
    """The conversation's rule set (tags, prompts, parsing, numbering, coordinates, preset,
    tools): a :class:`~minio3_ext.core.dialect.Dialect` from
    :func:`~minio3_ext.core.dialect.get_dialect`; a name (``"minio3"``, ``"hermes"``) is
    that dialect with its default options."""
    masked_reasons: frozenset[str] = OVERTURN_REASONS
    crop: CropRules = CropRules()
    view: ViewRules = ViewRules()
    image_patch: int = 28
    """Pixels per image token side when estimating image tokens (Qwen2.5-VL: 28)."""

    def __new__(cls, *args: Any, **kwargs: Any):
        moved = sorted(set(kwargs) & set(DIALECT_OPTIONS))
        if moved:
            shown = ", ".join(f"{k}={kwargs[k]!r}" for k in moved)
            name = kwargs.get("dialect") if isinstance(kwargs.get("dialect"), str) else "minio3"
            raise TypeError(f"EpisodeConfig: {', '.join(moved)} belong to the dialect; pass "
                            f"dialect=get_dialect({name!r}, {shown})")
        return super().__new__(cls)

    def __post_init__(self) -> None:
        if self.max_turns < 1:
            raise ValueError(f"EpisodeConfig.max_turns must be >= 1, got {self.max_turns}")
        if self.max_images < 1:
            raise ValueError(f"EpisodeConfig.max_images must be >= 1, got {self.max_images}")
        if isinstance(self.dialect, str):
            if self.dialect not in DIALECTS:
                raise ValueError(f"EpisodeConfig.dialect must be one of {DIALECTS} or a Dialect, got {self.dialect!r}")
            object.__setattr__(self, "dialect", get_dialect(self.dialect))
        elif not isinstance(self.dialect, Dialect):
            raise ValueError(f"EpisodeConfig.dialect must be a Dialect (get_dialect(...)) or one of {DIALECTS}, "
                             f"got {type(self.dialect).__name__}")
        if self.max_context_tokens is not None and self.max_context_tokens < 1:
            raise ValueError(f"EpisodeConfig.max_context_tokens must be >= 1 or None, got {self.max_context_tokens}")
        if self.image_patch < 1:
            raise ValueError(f"EpisodeConfig.image_patch must be >= 1, got {self.image_patch}")
        if isinstance(self.masked_reasons, str):
            raise ValueError(f"EpisodeConfig.masked_reasons must be a set of reasons, got the string {self.masked_reasons!r}")
        unknown = set(self.masked_reasons) - set(TERMINATION_REASONS)
        if unknown:
            raise ValueError(f"EpisodeConfig.masked_reasons: unknown reasons {sorted(unknown)}; expected from {TERMINATION_REASONS}")
        object.__setattr__(self, "masked_reasons", frozenset(self.masked_reasons))
        if self.dialect.clamp and not self.crop.clamp_to_last_pixel:
            # the released code clamps into [0, w-1] after scaling; the option travels to the crop
            object.__setattr__(self, "crop", replace(self.crop, clamp_to_last_pixel=True))

    @classmethod
    def from_options(cls, dialect: str | Dialect = "minio3", **options: Any) -> "EpisodeConfig":
        """An :class:`EpisodeConfig` from flat options, as option surfaces (verl's YAML, the
        recipes, the command line) spell them: :data:`DIALECT_OPTIONS` (``coords``,
        ``preset``, ``tools``, ``clamp``…) go to :func:`get_dialect` with the dialect's
        name, the rest to the config."""
        chosen = {k: options.pop(k) for k in list(options) if k in DIALECT_OPTIONS}
        if isinstance(dialect, Dialect):
            if chosen:
                raise TypeError(f"EpisodeConfig.from_options: {sorted(chosen)} given with a built Dialect")
        else:
            if dialect not in DIALECTS:
                raise ValueError(f"EpisodeConfig.dialect must be one of {DIALECTS}, got {dialect!r}")
            if "tools" in chosen:
                chosen["tools"] = tuple(chosen["tools"])
            dialect = get_dialect(dialect, **chosen)
        return cls(dialect=dialect, **options)

    def image_tokens(self, size: tuple[int, int]) -> int:
        return math.ceil(size[0] / self.image_patch) * math.ceil(size[1] / self.image_patch)


@dataclass
class Observation:
    """What the environment returns after a turn that did not end the episode."""

    text: str
    """Text for the observation turn (user turn in minio3, tool message in hermes)."""
    image: Image.Image | None = None
    """Model-facing image (resized to the pixel budget), ``None`` after an error."""
    index: int | None = None
    """Observation number (``observation_<index>``), ``None`` after an error."""
    error: str | None = None
    tool: str = "zoom"
    """The tool whose result (or error) this is."""
    dialect: Dialect | None = None

    def parts(self) -> list:
        """The turn's content in order: text pieces and the image at its slot."""
        if self.image is None:  # an error turn: its text (which may quote "<image>") has no slot
            return [self.text] if self.text else []
        d = self.dialect or get_dialect()
        return interleave(d.split_slots(self.text), [self.image])

    def text_only(self, image_note: str = "") -> str:
        """The text with the image slot replaced by ``image_note``."""
        d = self.dialect or get_dialect()
        return image_note.join(d.split_slots(self.text))


@dataclass
class TurnRecord:
    turn: int
    kind: str
    """``zoom``, ``answer``, ``invalid``, ``none`` or another tool's name."""
    source: str | None = None
    box: tuple[int, int, int, int] | None = None
    """Crop box in raw pixels of ``source``."""
    box_in_original: tuple[int, int, int, int] | None = None
    """The same region in raw pixels of the original image, when it maps there."""
    error: str | None = None


@dataclass
class Exchange:
    """One assistant turn as the episode consumed it, and what it answered (for
    :func:`~minio3_ext.core.chat.episode_messages`)."""

    text: str
    """The turn's text (``""`` when the caller gave only a parsed action)."""
    call: tuple[str, dict[str, Any]] | None = None
    """The structured tool call ``(name, arguments)`` when the turn was given as one."""
    observation: Observation | None = None
    """The turn's observation; ``None`` when it ended the episode."""


class Episode:
    """State of one rollout over one image. Not thread-safe; one per rollout.

    ``original`` is the raw image (share the bank's copy: it is never modified).
    ``first_view`` is what the model saw of it (the bank's cached one; computed here
    otherwise). Context tokens start at ``prompt_tokens``, or at the first view's
    image tokens when that is 0; each step adds the turn's tokens (``token_counter``)
    or takes the caller's exact ``context_tokens``, and each observation adds its
    image tokens (plus its text through ``token_counter``).
    """

    def __init__(
        self,
        original: Image.Image,
        config: EpisodeConfig = EpisodeConfig(),
        *,
        first_view: Image.Image | None = None,
        token_counter: Callable[[str], int] | None = None,
        prompt_tokens: int = 0,
    ):
        self.config = config
        self.token_counter = token_counter
        self.context_tokens = prompt_tokens
        first_view = first_view if first_view is not None else resize_for_model(original, config.view, first=True)
        self.first_view = first_view
        """The model's view of the original (the first image of the conversation)."""
        # raw images by source name; crops are cut from these, never from the views
        self._raw: dict[str, Image.Image] = {ORIGINAL: original}
        self._view_sizes: dict[str, tuple[int, int]] = {ORIGINAL: first_view.size}
        # where each source sits in the original: (x0, y0, scale_x, scale_y) or None
        self._origin: dict[str, tuple[float, float, float, float] | None] = {ORIGINAL: (0.0, 0.0, 1.0, 1.0)}
        self._tools = {name: (ZoomTool(config.crop) if name == "zoom" else get_tool(name)) for name in config.dialect.tools}
        self.turns = 0
        self.num_observations = 0
        self.invalid_actions = 0
        self.tool_calls = 0
        self.records: list[TurnRecord] = []
        self.exchanges: list[Exchange] = []
        """Every consumed turn with its observation, in order: the conversation so far."""
        self.termination_reason: str | None = None
        self.answer: str | None = None
        if not prompt_tokens:
            # observations add their image tokens below; the first image counts the same way
            self.context_tokens = config.image_tokens(first_view.size)

    # -- state -------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.termination_reason is not None

    @property
    def is_overturn(self) -> bool:
        """True when the episode should leave the policy gradient."""
        return self.termination_reason in self.config.masked_reasons

    @property
    def num_images(self) -> int:
        return 1 + self.num_observations

    def raw_image(self, source: str) -> Image.Image:
        return self._raw[source]

    def end(self, event: str, *, cut_turn: bool = False) -> None:
        """End the episode because its framework stopped it: ``event`` is one of the core's
        :data:`~minio3_ext.core.termination.STOP_EVENTS` (e.g. ``"length"``: the framework
        cut the generation at its token budget), mapped to the reason by
        :func:`~minio3_ext.core.termination.stop_reason`. ``cut_turn``: the event cut a turn
        the policy was writing; it counts as a turn (recorded as ``none``), its text unread.
        No effect on an ended episode."""
        if self.done:
            return
        reason = stop_reason(event)
        if cut_turn:
            self.turns += 1
            self.records.append(TurnRecord(self.turns, "none", error=f"{event}: the turn was cut, not read"))
        self.terminate(reason)

    def terminate(self, reason: str) -> None:
        """End the episode with a termination reason (adapters use :meth:`end`)."""
        if reason not in TERMINATION_REASONS:
            raise ValueError(f"unknown termination reason {reason!r}; expected one of {TERMINATION_REASONS}")
        if self.termination_reason is None:
            self.termination_reason = reason

    # -- the loop ------------------------------------------------------------
    @property
    def dialect(self) -> Dialect:
        return self.config.dialect

    def parse(self, model_text: str):
        """The action in ``model_text`` as this episode reads it (sources and sizes known so far)."""
        return self.dialect.parse(model_text, num_observations=self.num_observations, view_sizes=self._view_sizes)

    def parse_call(self, name, arguments):
        """The action of a tool call a framework already parsed."""
        return self.dialect.parse_call(name, arguments, num_observations=self.num_observations,
                                       view_sizes=self._view_sizes)

    def parse_turn(self, text, calls=()):
        """The action of a turn given as its text plus the tool calls a framework parsed from it
        (:meth:`Dialect.parse_turn`): one action per turn, whatever the number of calls."""
        return self.dialect.parse_turn(text, calls, num_observations=self.num_observations,
                                       view_sizes=self._view_sizes)

    def step(self, model_text: str, *, context_tokens: int | None = None) -> Observation | None:
        """Consume one assistant turn; return the next observation or ``None`` when done.

        ``context_tokens`` is the exact context length so far when the caller knows it
        (verl does); otherwise the injected ``token_counter`` keeps a running count.
        """
        if self.done:
            raise RuntimeError(f"episode already ended ({self.termination_reason})")
        return self.act(self.parse(model_text), context_tokens=context_tokens, text=model_text)

    def act(self, action, *, context_tokens: int | None = None, text: str | None = None,
            call: tuple[str, Mapping[str, Any]] | None = None) -> Observation | None:
        """Consume one assistant turn whose action is already parsed (one turn, whatever the
        number of calls the framework saw in it). ``text`` is the turn's text when known
        (for the running token count); ``None`` counts nothing unless ``context_tokens``.
        ``call``: the structured tool call ``(name, arguments)`` the turn was written as,
        kept for the conversation (:attr:`exchanges`)."""
        if self.done:
            raise RuntimeError(f"episode already ended ({self.termination_reason})")
        obs = self._act(action, context_tokens, text)
        self.exchanges.append(Exchange(text or "", None if call is None else (call[0], dict(call[1])), obs))
        return obs

    def call(self, name: str, arguments: Mapping[str, Any], *, text: str = "") -> Observation | None:
        """Consume one turn written as a structured tool call (an oracle's, a framework's)."""
        return self.act(self.parse_call(name, arguments), text=text, call=(name, arguments))

    def _act(self, action, context_tokens: int | None, text: str | None) -> Observation | None:
        self.turns += 1
        context_full = self._count(text or "", context_tokens)
        if isinstance(action, Answer):
            self.answer = recorded_answer(action.text)
            self.records.append(TurnRecord(self.turns, "answer"))
            self.termination_reason = "answered"
            return None
        if context_full:  # the turn itself filled the context: the policy could not finish
            self._record_action(action)
            self.termination_reason = "context_limit"
            return None
        if isinstance(action, Invalid) and not action.attempted:
            self.records.append(TurnRecord(self.turns, "none", error=action.reason))
            self.termination_reason = "no_answer"
            return None
        if self.turns >= self.config.max_turns:
            self._record_action(action)
            self.termination_reason = "turn_limit"
            return None
        if isinstance(action, Invalid):
            return self._error(action.reason)
        if self.num_images >= self.config.max_images:
            self._record_action(action)
            self.termination_reason = "image_limit"
            return None
        obs = self._execute(action)
        if obs.image is not None and self.config.max_context_tokens is not None:
            self.context_tokens += self.config.image_tokens(obs.image.size)
            if self.token_counter is not None:
                self.context_tokens += self.token_counter(obs.text)
            if self.context_tokens >= self.config.max_context_tokens:
                self.termination_reason = "context_limit"
                return None
        return obs

    def _count(self, text: str, context_tokens: int | None) -> bool:
        """Update the context length; True when it reached the budget."""
        if context_tokens is not None:
            self.context_tokens = context_tokens
        elif self.token_counter is not None:
            self.context_tokens += self.token_counter(text)
        else:
            return False
        limit = self.config.max_context_tokens
        return limit is not None and self.context_tokens >= limit

    def _record_action(self, action: Any) -> None:
        """Record an action that was not executed because the episode ended."""
        if isinstance(action, Invalid):
            kind = "invalid" if action.attempted else "none"
            self.invalid_actions += action.attempted
        else:
            kind = action.name
        self.records.append(TurnRecord(self.turns, kind, getattr(action, "source", None), error=getattr(action, "reason", None)))

    def _error(self, message: str, tool: str = "zoom") -> Observation:
        self.invalid_actions += 1
        self.records.append(TurnRecord(self.turns, "invalid", error=message))
        return Observation(self.dialect.error_text(self.turns - 1, message, tool), error=message, tool=tool,
                           dialect=self.dialect)

    def _execute(self, action: Zoom | ToolCall) -> Observation:
        tool = self._tools.get(action.name)
        if tool is None:
            return self._error(f"unknown tool {action.name!r}; available: {sorted(self._tools)}")
        try:
            args = {"bbox_2d": action.bbox} if isinstance(action, Zoom) else tool.check_arguments(action.arguments)
        except (ActionError, ValueError, TypeError, KeyError, ArithmeticError) as e:  # model-written arguments never crash a rollout
            return self._error(str(e) if isinstance(e, ActionError) else f"invalid arguments for {action.name!r}: {e}",
                               action.name)
        try:
            result = tool.apply(self._raw[action.source], args)
        except ActionError as e:
            return self._error(str(e), action.name)
        except Exception as e:  # a third-party tool's bug is an error turn, never a crashed rollout
            return self._error(f"the {action.name} tool failed: {type(e).__name__}: {e}", action.name)
        self.num_observations += 1
        self.tool_calls += 1
        name = f"observation_{self.num_observations}"
        self._raw[name] = result.image
        view = resize_for_model(result.image, self.config.view)
        self._view_sizes[name] = view.size
        box_orig = None
        origin = self._origin.get(action.source)
        if result.box is not None and origin is not None:
            ox, oy, sx, sy = origin
            x0, y0, x1, y1 = result.box
            box_orig = (round(ox + x0 * sx), round(oy + y0 * sy), round(ox + x1 * sx), round(oy + y1 * sy))
            self._origin[name] = (ox + x0 * sx, oy + y0 * sy, sx, sy)
        else:
            self._origin[name] = None
        self.records.append(TurnRecord(self.turns, action.name, action.source, result.box, box_orig))
        text = self.dialect.observation_text(self.turns - 1, self.num_observations, action.name)
        return Observation(text, view, self.num_observations, tool=action.name, dialect=self.dialect)

    # -- reporting -------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Per-episode record: reason, counts, and every action with its boxes."""
        return {
            "termination_reason": self.termination_reason,
            "is_overturn": self.is_overturn,
            "turns": self.turns,
            "zooms": sum(r.kind == "zoom" and r.box is not None for r in self.records),
            "tool_calls": self.tool_calls,
            "images": self.num_images,
            "invalid_actions": self.invalid_actions,
            "answer": self.answer,
            "context_tokens": self.context_tokens,
            "actions": [asdict(r) for r in self.records],
        }
