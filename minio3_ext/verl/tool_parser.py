"""The core dialects as verl tool parsers.

``actor_rollout_ref.rollout.multi_turn.format=minio3`` makes verl read a turn's action
the way the core dialect does (:meth:`minio3_ext.core.dialect.Dialect.read_call`):
``<grounding>{...}</grounding>`` is a ``zoom`` call, ``<tool_call>{...}</tool_call>``
a call of another registered tool, and a turn whose first action is an ``<answer>``
(any case) calls nothing. ``format=minio3_released`` follows the released preset
(any ``<grounding>`` makes the turn a zoom); ``format=minio3_hermes`` reads the hermes
dialect with the core's tolerant rules (verl's own ``hermes`` parser is stricter). A
body that cannot be read still yields a call whose raw arguments the tool answers with
an error observation, so a malformed action does not silently end the episode.

The ``minio3_agent`` loop replaces whatever parser ``format`` names with a
:class:`TurnReader`: it decodes the turn once, and the loop hands that text to the
trajectory's episode in one call (:meth:`~minio3_ext.core.Episode.step`: one
:meth:`~minio3_ext.core.dialect.Dialect.parse` with the sources and view sizes known so
far, then the action). verl gets the turn's text and no ``FunctionCall``: the loop, not
verl's tool path, runs the action, and the text already holds the call as generated.
"""

from __future__ import annotations

import json

from verl.experimental.agent_loop.tool_parser import FunctionCall, ToolParser
from verl.utils.ray_utils import get_event_loop

from minio3_ext.core.dialect import Dialect, get_dialect

__all__ = [
    "Minio3ToolParser", "Minio3ReleasedToolParser", "Minio3HermesToolParser", "NAME", "RELEASED_NAME",
    "HERMES_NAME", "DialectCall", "TurnReader",
]

NAME = "minio3"
RELEASED_NAME = "minio3_released"
HERMES_NAME = "minio3_hermes"


class DialectCall(FunctionCall):
    """verl's ``FunctionCall``, marking a call whose body the dialect could not read (its
    ``arguments`` are then the raw body, for verl's own tool path to reject)."""

    unreadable: bool = False


@ToolParser.register(NAME)
class Minio3ToolParser(ToolParser):
    """A turn's first action, read by the core dialect; only that one action counts."""

    dialect: Dialect = get_dialect(NAME)

    async def extract_tool_calls(self, responses_ids: list[int], tools=None) -> tuple[str, list[FunctionCall]]:
        text = await get_event_loop().run_in_executor(None, self.tokenizer.decode, responses_ids)
        return text, self.parse(text, self.dialect)

    @staticmethod
    def parse(text: str, dialect: Dialect | str = "strict") -> list[FunctionCall]:
        """The calls of one turn (zero or one). ``dialect`` is a dialect or a minio3 preset name."""
        d = dialect if isinstance(dialect, Dialect) else get_dialect(NAME, preset=dialect)
        call = d.read_call(text)
        if call is None:
            return []
        name, arguments = call
        unreadable = isinstance(arguments, str)
        if not unreadable:
            try:
                arguments = json.dumps(arguments, ensure_ascii=False, default=str)
            except (TypeError, ValueError, RecursionError):
                arguments, unreadable = "", True  # not JSON-representable
        # a missing or non-text name stays unnamed, so the episode rejects it as the core does
        return [DialectCall(name=name if isinstance(name, str) else "", arguments=arguments, unreadable=unreadable)]


@ToolParser.register(RELEASED_NAME)
class Minio3ReleasedToolParser(Minio3ToolParser):
    """The released preset: any ``<grounding>`` in a turn makes it a zoom."""

    dialect = get_dialect(NAME, preset="released")


@ToolParser.register(HERMES_NAME)
class Minio3HermesToolParser(Minio3ToolParser):
    """The hermes dialect (every tool, zoom included, as a ``<tool_call>``), core rules."""

    dialect = get_dialect("hermes")


class TurnReader(ToolParser):
    """The ``minio3_agent`` loop's parser: one decode per turn, no reading.

    :meth:`extract_tool_calls` (called by verl's generating state) decodes the turn, keeps
    the text in :attr:`turn` and gives verl the text and no call: the loop, not verl's tool
    path, runs the action. :meth:`text_of` returns that text, or decodes the ids itself when
    verl returned before parsing (its own turn caps). The loop hands the text to the episode
    in one call (:meth:`~minio3_ext.core.Episode.step`), which reads it once."""

    def __init__(self, tokenizer) -> None:
        super().__init__(tokenizer)
        self.turn: tuple[list[int], str] | None = None

    async def extract_tool_calls(self, responses_ids: list[int], tools=None) -> tuple[str, list[FunctionCall]]:
        text = await get_event_loop().run_in_executor(None, self.tokenizer.decode, responses_ids)
        self.turn = (responses_ids, text)
        return text, []

    def text_of(self, responses_ids: list[int]) -> str:
        """The text of the turn ``responses_ids``, decoded once."""
        if self.turn is None or self.turn[0] is not responses_ids:
            self.turn = (responses_ids, self.tokenizer.decode(responses_ids))
        return self.turn[1]
