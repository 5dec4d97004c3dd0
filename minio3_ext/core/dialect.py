"""The one rule set of the conversation.

A :class:`Dialect` owns every rule of what the model reads and writes: the action
tags and stop strings, the answer rule, the system prompt (for the coordinate system
and the tools enabled), tool schemas, the observation / error text and its numbering,
and where images sit in text (``<image>`` slots). The episode, both framework
adapters, evaluation, SFT export, cold start and the viewer ask a dialect; none keeps
a copy of a tag, a regex or a prompt.

Two dialects:

- ``minio3``: the released Mini-o3 checkpoint's words, byte for byte (system prompt,
  observation and error turns, action numbering from 0; ``../shared/released``).
  Zooms are ``<grounding>{...}</grounding>``; other registered tools are called with
  ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.
- ``hermes``: every tool, zoom included, as a Hermes ``<tool_call>``.

Reading accepts any whitespace inside the tags; :meth:`Dialect.render` writes a
``<tool_call>`` in Qwen's layout (the JSON on its own line), as the chat templates do.

Two presets of edge-case semantics, each also a separate option:

============================  =====================  ==============================
option                        ``strict`` (default)   ``released`` (the released code)
============================  =====================  ==============================
``clamp``                     out-of-range box is    clamped after scaling to
                              an error turn          ``[0, w-1]`` / ``[0, h-1]``
``observation_zero``          ``observation_0`` is   ``observation_0`` is the
                              an unknown source      original image
``grounding_wins``            the first action tag   any ``<grounding>`` makes the
                              of the turn wins       turn a zoom, even after an answer
``released_numbering``        Observation = the      Observation = action index + 1
                              number to use as       (skips after a failed action)
                              ``observation_i``
============================  =====================  ==============================

>>> d = get_dialect("minio3")
>>> d.parse('<think>small</think><grounding>{"bbox_2d": [0, 0, 0.5, 0.5], "source": "original_image"}</grounding>')
Zoom(bbox=(0.0, 0.0, 0.5, 0.5), source='original_image')
>>> d.answer("<think>It is red.</think> <answer>red</answer>")
'red'
>>> d.stop
('</grounding>',)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from .actions import (
    COORD_SYSTEMS, ORIGINAL, Action, ActionError, Answer, Invalid, ToolCall, Zoom, parse_bbox, parse_source,
)
from .jsonish import JsonishError, loads_tolerant
from .termination import recorded_answer

__all__ = [
    "Dialect", "get_dialect", "DIALECTS", "PRESETS", "IMAGE_SLOT",
    "extract_answer", "interleave",
]

DIALECTS = ("minio3", "hermes")
#: Released-code edge cases per preset; each can be overridden on its own.
PRESETS: dict[str, dict[str, bool]] = {
    "strict": {"clamp": False, "observation_zero": False, "grounding_wins": False, "released_numbering": False},
    "released": {"clamp": True, "observation_zero": True, "grounding_wins": True, "released_numbering": True},
}
#: Where an image goes in any text the package builds (split by :meth:`Dialect.split_slots`).
IMAGE_SLOT = "<image>"

# -- tags and the regexes over them: the only copy in the package ------------------------
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
GROUNDING_OPEN, GROUNDING_CLOSE = "<grounding>", "</grounding>"
TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE = "<tool_response>\n", "\n</tool_response>"
# Tags are found one at a time, left to right (never ``<answer>(.*?)</answer>``): a lazy
# span regex retries from every opening tag, quadratic on a turn that repeats an unclosed
# one (a 32k-token turn took seconds). The first opening tag is the only candidate: when
# no closing tag follows it, none follows a later one either.
_ANSWER_OPEN_RE = re.compile(r"<answer>", re.IGNORECASE)
_ANSWER_CLOSE_RE = re.compile(r"</answer>", re.IGNORECASE)
_OPEN_TAG = {"minio3": GROUNDING_OPEN, "hermes": TOOL_CALL_OPEN}
_CLOSE_TAG = {GROUNDING_OPEN: GROUNDING_CLOSE, TOOL_CALL_OPEN: TOOL_CALL_CLOSE}

# -- the released checkpoint's words (../shared/released/prompts.md), spelling included ---
_RELEASED_COORDS = "(suppose the width and height of the image are 1.0)"
_COORDS_TEXT = {
    "relative": _RELEASED_COORDS,
    "thousand": "(integers from 0 to 1000, where 0 is the left or top edge of the image and 1000 the right or bottom edge)",
    "pixel": "(in pixels of the image as you see it)",
}
_MINIO3_SYSTEM = (
    "You are a helpful assistant. Answer the user's question based on the image provided. Output your thinking "
    "process within the <think> and </think> tags. Whenever you find anything unclear, you can zoom in a specific "
    'region in the given image to see more clearly by outputing <grounding>{{"bbox_2d": [x0, y0, x1, y1], "source": '
    '"original_image"}}</grounding>, where (x0, y0) and (x1, y1) are the top-left and bottom-right coordinates of the '
    "region that you want to zoom in, respectively {coords}, and 'source' refers to the image that you zoom in and could "
    "be either 'original_image' or 'observation_i'. Once the final answer is confirmed, put it within <answer> and </answer>."
)
_HERMES_SYSTEM = (
    "You are a helpful assistant. Answer the user's question based on the image provided. Output your thinking "
    "process within the <think> and </think> tags. Whenever you find anything unclear, call the zoom tool to zoom in a "
    "specific region of an image: its 'bbox_2d' is [x0, y0, x1, y1], the top-left and bottom-right coordinates of the "
    "region {coords}, and its 'source' is the image to zoom in, either 'original_image' or 'observation_i'. "
    "Once the final answer is confirmed, put it within <answer> and </answer>."
)
_OBSERVATION = (
    "After the above Action {action}, here is the {what} (Observation {observation}):\n{slot}.\n"
    "Continue your reasoning process inside <think> and </think>. If needed, you can continue to zoom in on the "
    "original image or any of the observations, {how} as before. If the final answer is confirmed, put your final "
    "answer inside <answer> and </answer>."
)
_HOW = {"minio3": "by outputting <grounding> and </grounding>", "hermes": "by calling the zoom tool"}
_ERROR = (
    "ERROR occurs during {what}. Error Information: {message}.\n"
    "Please analyze the error information obtained from the function tool and adjust your response. "
    "Countinue your reasoning process inside <think> and </think>."
)
_BBOX_HELP = {
    "relative": "relative to the image width and height (both 1.0): each value in [0, 1]",
    "thousand": "on a 0-1000 scale of the image width and height: each value in [0, 1000]",
    "pixel": "in pixels of the image as the model sees it",
}


def extract_answer(text: str | None) -> str | None:
    """The answer rule: the first ``<answer>…</answer>`` (any case), as an episode records
    it (:func:`~minio3_ext.core.termination.recorded_answer`: stripped, capped).

    ``None`` when there is no complete answer tag (the trajectory scores 0).

    >>> extract_answer("<think>red car</think><answer> B </answer> done")
    'B'
    >>> extract_answer("no tag") is None
    True
    """
    if not text:
        return None
    return recorded_answer(_answer_body(text))


def _answer_body(text: str, start: int = 0) -> str | None:
    """The text between the first ``<answer>`` at or after ``start`` and the first
    ``</answer>`` after it (any case), or ``None``; one linear pass."""
    opened = _ANSWER_OPEN_RE.search(text, start)
    if opened is None:
        return None
    closed = _ANSWER_CLOSE_RE.search(text, opened.end())
    return None if closed is None else text[opened.end():closed.start()]


def interleave(pieces: Sequence[str], images: Sequence[Any]) -> list[Any]:
    """``[text, image, text, image, text]`` from ``len(images) + 1`` text pieces; empty texts dropped."""
    if len(pieces) != len(images) + 1:
        raise ValueError(f"text has {len(pieces) - 1} image slot(s) but {len(images)} image(s) were given")
    out: list[Any] = []
    for i, piece in enumerate(pieces):
        if piece:
            out.append(piece)
        if i < len(images):
            out.append(images[i])
    return out


@dataclass(frozen=True)
class Dialect:
    """Every rule of the conversation for one dialect, coordinate system, preset and tool set.

    Build with :func:`get_dialect` (cached). Options left ``None`` take the preset's value.
    """

    name: str = "minio3"
    coords: str = "relative"
    preset: str = "strict"
    tools: tuple[str, ...] = ("zoom",)
    clamp: bool | None = None
    observation_zero: bool | None = None
    grounding_wins: bool | None = None
    released_numbering: bool | None = None
    _schemas: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.name not in DIALECTS:
            raise ValueError(f"unknown dialect {self.name!r}; expected one of {DIALECTS}")
        if self.coords not in COORD_SYSTEMS:
            raise ValueError(f"unknown coordinate system {self.coords!r}; expected one of {COORD_SYSTEMS}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; expected one of {tuple(PRESETS)}")
        tools = tuple(dict.fromkeys(self.tools))
        if "zoom" not in tools:
            tools = ("zoom",) + tools
        object.__setattr__(self, "tools", tools)
        for key, value in PRESETS[self.preset].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)

    # -- tags ------------------------------------------------------------------------------
    @property
    def action_open(self) -> str:
        """Opening tag of a zoom action."""
        return _OPEN_TAG[self.name]

    @property
    def action_close(self) -> str:
        return _CLOSE_TAG[self.action_open]

    @property
    def extra_tools(self) -> tuple[str, ...]:
        return tuple(t for t in self.tools if t != "zoom")

    @property
    def stop(self) -> tuple[str, ...]:
        """Generation stops at these strings, which stay in the output (released rollout)."""
        if self.name == "minio3" and self.extra_tools:
            return (GROUNDING_CLOSE, TOOL_CALL_CLOSE)
        return (self.action_close,)

    image_slot = IMAGE_SLOT

    @property
    def observation_role(self) -> str:
        """Chat role of an observation turn: ``user`` (released minio3) or ``tool`` (Hermes)."""
        return "user" if self.name == "minio3" else "tool"

    @staticmethod
    def tool_response_wrap() -> tuple[str, str]:
        """Text around a tool result sent as a user turn (OpenAI ``tool`` messages cannot
        carry images): Qwen's Hermes ``<tool_response>`` block."""
        return TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE

    def restore_stop(self, text: str, matched: str | None) -> str:
        """Put back the stop string a server dropped. ``matched`` is the stop string the
        server says ended the turn (``None`` when the model ended by itself)."""
        if matched in self.stop and not text.endswith(matched):
            return text + matched
        return text

    def split_slots(self, text: str) -> list[str]:
        """Text pieces around each image slot (``n`` slots → ``n + 1`` pieces)."""
        return text.split(IMAGE_SLOT)

    def count_slots(self, text: str) -> int:
        return text.count(IMAGE_SLOT)

    def strip_slots(self, text: str) -> str:
        """The question without its image slot(s)."""
        return text.replace(IMAGE_SLOT, "").strip()

    # -- reading model text ------------------------------------------------------------------
    def answer(self, text: str | None) -> str | None:
        """The answer rule (:func:`extract_answer`)."""
        return extract_answer(text)

    def think_ok(self, text: str) -> bool:
        """The turn thinks inside ``<think>…</think>``."""
        text = text or ""
        opened = text.find(THINK_OPEN)
        return opened >= 0 and text.find(THINK_CLOSE, opened + len(THINK_OPEN)) >= 0

    def parse(
        self,
        text: Any,
        *,
        num_observations: int | None = None,
        view_sizes: Mapping[str, tuple[int, int]] | None = None,
    ) -> Action:
        """Parse one assistant turn into Zoom / ToolCall / Answer / Invalid. Never raises.

        ``strict``: the first action tag of the turn wins (``<answer>`` in any case).
        ``grounding_wins``: any ``<grounding>`` makes it a zoom (the released loop).
        ``<tool_call>`` is read in both dialects, so that other registered tools can be called.
        """
        if not isinstance(text, str):
            return Invalid(f"model output must be text, got {type(text).__name__}", attempted=False)
        kind, payload = self._locate(text)
        if kind is None:
            how = "<grounding>{...}</grounding>" if self.name == "minio3" else "a zoom tool call"
            return Invalid(f"no action found: zoom with {how} or give <answer>...</answer>", attempted=False)
        if kind == "answer":
            return Invalid("unterminated <answer>: close it with </answer>") if payload is None else Answer(payload)
        kw = dict(num_observations=num_observations, view_sizes=view_sizes)
        name, args = self._call(kind, payload)
        if isinstance(args, Invalid):
            return args
        return self.parse_call(name, args, **kw)

    def parse_turn(
        self,
        text: Any,
        calls: Sequence[tuple[Any, Any]] = (),
        *,
        num_observations: int | None = None,
        view_sizes: Mapping[str, tuple[int, int]] | None = None,
    ) -> Action:
        """The action of a turn a framework already split into its text and its parsed tool
        calls ``[(name, arguments), ...]`` (the text that came before the calls, as TRL's
        response parsing gives it). The same precedence as :meth:`parse` over the whole
        turn: the first action wins, so an action in the text beats the calls after it,
        except that with ``grounding_wins`` a zoom call wins over an answer; one action per
        turn, later calls are not run. Never raises."""
        kw = dict(num_observations=num_observations, view_sizes=view_sizes)
        text_action = self.parse(text if isinstance(text, str) else "", **kw)
        if not calls:
            return text_action
        if self.grounding_wins and self.name == "minio3":
            if self._locate(text if isinstance(text, str) else "")[0] == GROUNDING_OPEN:
                return text_action
            zoom = next((c for c in calls if c[0] == "zoom"), None)
            if zoom is not None:
                return self.parse_call(*zoom, **kw)
        if isinstance(text_action, Invalid) and not text_action.attempted:
            return self.parse_call(*calls[0], **kw)
        return text_action

    def read_call(self, text: str) -> tuple[str, Any] | None:
        """The tool call a turn makes, as ``(name, arguments)``, or ``None`` when the turn's
        action is an answer or there is none. ``arguments`` is a dict, or the raw body text
        when it cannot be read (the tool then answers with an error turn). For framework
        tool parsers; the same rules as :meth:`parse`."""
        kind, payload = self._locate(text if isinstance(text, str) else "")
        if kind in (None, "answer"):
            return None
        name, args = self._call(kind, payload)
        if isinstance(args, Invalid):
            return (name or "zoom"), payload
        return name, args

    def _locate(self, text: str) -> tuple[str | None, Any]:
        """The turn's action tag: ``("answer", text | None)``, ``(open_tag, body)`` or ``(None, None)``."""
        answer_open = _ANSWER_OPEN_RE.search(text)
        candidates = [(answer_open.start() if answer_open else -1, "answer"), (text.find(TOOL_CALL_OPEN), TOOL_CALL_OPEN)]
        if self.name == "minio3":
            candidates.append((text.find(GROUNDING_OPEN), GROUNDING_OPEN))
        found = sorted((pos, kind) for pos, kind in candidates if pos >= 0)
        if not found:
            return None, None
        if self.grounding_wins and self.name == "minio3" and any(k == GROUNDING_OPEN for _, k in found):
            pos, kind = next((p, k) for p, k in found if k == GROUNDING_OPEN)
        else:
            pos, kind = found[0]
        if kind == "answer":
            body = _answer_body(text, pos)
            return "answer", (None if body is None else body.strip())
        body_start = pos + len(kind)
        end = text.find(_CLOSE_TAG[kind], body_start)
        return kind, (text[body_start:] if end < 0 else text[body_start:end])

    @staticmethod
    def _call(kind: str, body: str) -> tuple[Any, Any]:
        """``(name, arguments)`` of a call body; arguments is an :class:`Invalid` when unreadable."""
        try:
            obj = loads_tolerant(body)
        except JsonishError as e:
            return ("zoom" if kind == GROUNDING_OPEN else None), Invalid(f"could not read the action: {e}")
        if kind == GROUNDING_OPEN:
            return "zoom", obj
        if not isinstance(obj, Mapping):
            return None, Invalid(f"a tool call must be a JSON object, got {type(obj).__name__}")
        args = obj.get("arguments", {})
        if isinstance(args, str):
            try:
                args = loads_tolerant(args)
            except JsonishError as e:
                return obj.get("name"), Invalid(f"could not read the tool arguments: {e}")
        return obj.get("name"), args

    def parse_call(
        self,
        name: Any,
        arguments: Any,
        *,
        num_observations: int | None = None,
        view_sizes: Mapping[str, tuple[int, int]] | None = None,
    ) -> Action:
        """An action from a tool call a framework already parsed (name + arguments). Never raises."""
        if not isinstance(arguments, Mapping):
            return Invalid(f"tool arguments must be a JSON object, got {type(arguments).__name__}")
        try:
            source = self.parse_source(arguments.get("source"), num_observations)
            if name == "zoom":
                bbox_value = arguments["bbox_2d"] if "bbox_2d" in arguments else arguments.get("bbox")
                if bbox_value is None:
                    raise ActionError("missing 'bbox_2d': give [x0, y0, x1, y1]")
                view = (view_sizes or {}).get(source)
                return Zoom(parse_bbox(bbox_value, coords=self.coords, view_size=view, clamp=self.clamp), source)
        except ActionError as e:
            return Invalid(str(e))
        if not isinstance(name, str) or not name:
            return Invalid("tool call is missing its 'name'")
        # the source travels in ToolCall.source, not twice
        return ToolCall(name, {k: v for k, v in arguments.items() if k != "source"}, source)

    def parse_source(self, value: Any, num_observations: int | None) -> str:
        if self.observation_zero and isinstance(value, str) and value.strip().lower() in ("observation_0", "observation 0"):
            return ORIGINAL
        return parse_source(value, num_observations)

    def render(self, action: Action) -> str:
        """Render an action as the model writes it (inverse of :meth:`parse`)."""
        if isinstance(action, Answer):
            return f"{ANSWER_OPEN}{action.text}{ANSWER_CLOSE}"
        if isinstance(action, Zoom):
            args = {"bbox_2d": list(action.bbox), "source": action.source}
            if self.name == "minio3":
                return GROUNDING_OPEN + json.dumps(args, ensure_ascii=False) + GROUNDING_CLOSE
            return self.render_call("zoom", args)
        if isinstance(action, ToolCall):
            return self.render_call(action.name, {**action.arguments, "source": action.source})
        raise TypeError(f"cannot render {type(action).__name__}")

    @staticmethod
    def render_call(name: str, arguments: Mapping[str, Any]) -> str:
        """A tool call in Qwen's Hermes layout, as the chat templates render one (TRL's
        Qwen3-VL template, ``minio3_ext/trl/minio3_dialect.jinja``): the JSON object on its
        own line between the tags, non-ASCII text as is."""
        body = json.dumps({"name": name, "arguments": dict(arguments)}, ensure_ascii=False, default=str)
        return f"{TOOL_CALL_OPEN}\n{body}\n{TOOL_CALL_CLOSE}"

    def render_thought(self, thought: str) -> str:
        return f"{THINK_OPEN}{thought}{THINK_CLOSE}"

    # -- what the environment says -------------------------------------------------------
    def system_prompt(self) -> str:
        """The system prompt: the released words for ``minio3``/relative/zoom only."""
        coords = _COORDS_TEXT[self.coords]
        text = (_MINIO3_SYSTEM if self.name == "minio3" else _HERMES_SYSTEM).format(coords=coords)
        if self.extra_tools:
            text += "\n" + self._tools_paragraph()
        return text

    def _tools_paragraph(self) -> str:
        how = ("Besides zooming, you can call these tools by outputting "
               '<tool_call>{"name": "<tool name>", "arguments": {...}}</tool_call>'
               if self.name == "minio3" else "Besides zoom, you can call these tools")
        lines = [f"{how}; every tool also takes 'source' ('original_image' or 'observation_i') and its result "
                 "becomes the next observation:"]
        for schema in self.tool_schemas():
            fn = schema["function"]
            if fn["name"] == "zoom":
                continue
            props = fn.get("parameters", {}).get("properties", {})
            args = ", ".join(f"{k} ({v.get('type', 'any')}{', one of ' + '/'.join(map(str, v['enum'])) if 'enum' in v else ''})"
                             for k, v in props.items() if k != "source")
            lines.append(f"- {fn['name']}: {fn['description']} Arguments: {args or 'none'}.")
        return "\n".join(lines)

    def user_prompt(self, question: str) -> str:
        """The first user turn: the image slot, a newline, the question (released layout)."""
        return f"{IMAGE_SLOT}\n{self.strip_slots(question)}"

    def observation_text(self, action_index: int, observation_index: int, tool: str = "zoom") -> str:
        """The turn after a successful action; ``<image>`` marks where the new image goes.

        ``action_index`` counts assistant turns from 0. The Observation number is
        ``observation_index`` (the name to use as ``observation_i``), or ``action_index + 1``
        with ``released_numbering``.
        """
        number = action_index + 1 if self.released_numbering else observation_index
        what = "the zoom-in image" if tool == "zoom" else f"result of the {tool} tool"
        return _OBSERVATION.format(action=action_index, what=what, observation=number, slot=IMAGE_SLOT,
                                   how=_HOW[self.name])

    def error_text(self, action_index: int, message: str, tool: str = "zoom") -> str:
        """The turn after a failed action: no image, the reason, a request to adjust."""
        what = "grounding" if tool == "zoom" else f"the {tool} tool call"
        return _ERROR.format(what=what, message=str(message).rstrip(". "))

    def tool_schemas(self) -> list[dict[str, Any]]:
        """OpenAI function schemas of the enabled tools (zoom's described for ``coords``)."""
        if "list" not in self._schemas:
            from .tools import get_tool  # tools imports actions only; no cycle at module level

            out = []
            for name in self.tools:
                schema = json.loads(json.dumps(get_tool(name).schema()))
                if name == "zoom":
                    fn = schema["function"]
                    fn["description"] = ("Zoom in: crop a region of an image to look at it in detail. bbox_2d is "
                                         f"[x0, y0, x1, y1] {_BBOX_HELP[self.coords]}, x0 < x1, y0 < y1.")
                    fn["parameters"]["properties"]["bbox_2d"]["description"] = f"Box [x0, y0, x1, y1] {_BBOX_HELP[self.coords]}."
                out.append(schema)
            self._schemas["list"] = out
        return json.loads(json.dumps(self._schemas["list"]))

    def response_schema(self) -> dict[str, Any]:
        """transformers' response-parsing schema (legacy ``x-regex`` form) for this dialect:
        thinking, text, then the calls. ``minio3``: ``<grounding>`` zooms and ``<tool_call>``
        calls (other tools; read in both dialects, like :meth:`parse`), each ``<grounding>``
        rewritten into a ``zoom`` tool call before the calls are read; ``hermes``: ``<tool_call>``."""
        to, tc = re.escape(TOOL_CALL_OPEN), re.escape(TOOL_CALL_CLOSE)
        call = rf"{to}(?:(?!{tc})[\s\S])+{tc}"
        subs: list[list[str]] = []
        if self.name == "minio3":
            go, gc = re.escape(GROUNDING_OPEN), re.escape(GROUNDING_CLOSE)
            o = rf"(?:{go}|{to})"
            call = rf"(?:{go}(?:(?!{gc})[\s\S])+{gc}|{call})"
            # a <grounding> body is the zoom's arguments (the released form)
            subs = [[rf"{go}\s*(.+?)\s*{gc}", TOOL_CALL_OPEN + '{"name": "zoom", "arguments": \\1}' + TOOL_CALL_CLOSE]]
        else:
            o = to
        tool_calls: dict[str, Any] = {
            "type": "array",
            "x-regex-iterator": rf"{to}\s*(.+?)\s*{tc}",
            "items": {"x-parser": "json", "x-parser-args": {"transform": "{type: 'function', function: @}"},
                      "type": "object", "properties": {
                          "type": {"const": "function"},
                          "function": {"type": "object", "properties": {
                              "name": {"type": "string"}, "arguments": {"type": "object", "additionalProperties": {}}}},
                      }},
        }
        if subs:
            tool_calls = {"x-regex-substitutions": subs, **tool_calls}
        return {
            "x-regex": (rf"^(?:{THINK_OPEN}\n?(?:(?P<reasoning_content>.*?\S.*?)\n?|[\s]*){THINK_CLOSE}\s*)?"
                        rf"(?P<content>(?:(?!{o})[\s\S])*?)(?=(?:{o}|<\|im_end\|>|$))"
                        rf"(?P<tool_calls>(?:{call}\s*)+)?\s*(?:<\|im_end\|>|$)"),
            "type": "object",
            "properties": {
                "role": {"const": "assistant"},
                "content": {"type": "string"},
                "reasoning_content": {"type": "string"},
                "tool_calls": tool_calls,
            },
        }


@lru_cache(maxsize=256)
def _cached(name: str, coords: str, preset: str, tools: tuple[str, ...], overrides: tuple) -> Dialect:
    return Dialect(name, coords, preset, tools, **dict(overrides))


def get_dialect(
    name: str | Dialect = "minio3",
    *,
    coords: str = "relative",
    preset: str = "strict",
    tools: Iterable[str] = ("zoom",),
    **overrides: bool | None,
) -> Dialect:
    """The (cached) dialect for ``name``, coordinate system, preset, tools and option overrides."""
    if isinstance(name, Dialect):
        return name
    unknown = set(overrides) - set(PRESETS["strict"])
    if unknown:
        raise TypeError(f"unknown dialect option(s) {sorted(unknown)}; expected from {sorted(PRESETS['strict'])}")
    items = tuple(sorted((k, v) for k, v in overrides.items() if v is not None))
    return _cached(name, coords, preset, tuple(tools), items)
