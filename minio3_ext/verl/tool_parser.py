"""The released Mini-o3 action dialect as a verl tool parser (SPEC 1.1).

``actor_rollout_ref.rollout.multi_turn.format=minio3`` makes verl read a turn's action
the way the core dialect does (:meth:`minio3_ext.core.dialect.Dialect.read_call`):
``<grounding>{...}</grounding>`` is a ``zoom`` call, ``<tool_call>{...}</tool_call>``
a call of another registered tool, and a turn whose first action is an ``<answer>``
(any case) calls nothing. ``format=minio3_released`` follows the released preset
(any ``<grounding>`` makes the turn a zoom). A body that cannot be read still yields a
call whose raw arguments the tool answers with an error observation, so a malformed
action does not silently end the episode.
"""

from __future__ import annotations

import json

from verl.experimental.agent_loop.tool_parser import FunctionCall, ToolParser
from verl.utils.ray_utils import get_event_loop

from minio3_ext.core.dialect import get_dialect

__all__ = ["Minio3ToolParser", "Minio3ReleasedToolParser", "NAME", "RELEASED_NAME", "STOP"]

NAME = "minio3"
RELEASED_NAME = "minio3_released"
#: Generation stops at the dialect's stop string; it stays in the output (vLLM ``stop`` +
#: ``include_stop_str_in_output``), as in the released rollout code.
STOP = get_dialect(NAME).stop[0]


@ToolParser.register(NAME)
class Minio3ToolParser(ToolParser):
    """A turn's first action, read by the core dialect; only that one action counts."""

    preset = "strict"

    async def extract_tool_calls(self, responses_ids: list[int], tools=None) -> tuple[str, list[FunctionCall]]:
        text = await get_event_loop().run_in_executor(None, self.tokenizer.decode, responses_ids)
        return text, self.parse(text, self.preset)

    @staticmethod
    def parse(text: str, preset: str = "strict") -> list[FunctionCall]:
        call = get_dialect(NAME, preset=preset).read_call(text)
        if call is None:
            return []
        name, arguments = call
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False, default=str)
        return [FunctionCall(name=str(name), arguments=arguments)]


@ToolParser.register(RELEASED_NAME)
class Minio3ReleasedToolParser(Minio3ToolParser):
    """The released preset: any ``<grounding>`` in a turn makes it a zoom."""

    preset = "released"
