"""The released Mini-o3 action dialect as a verl tool parser (SPEC 1.1).

``actor_rollout_ref.rollout.multi_turn.format=minio3`` makes verl read
``<grounding>{"bbox_2d": [...], "source": "..."}</grounding>`` as a call of the
``zoom`` tool. The body is read tolerantly (any key order, single quotes, trailing
text) and never evaluated. A body that cannot be read still yields a ``zoom`` call
whose raw arguments verl's tool loop rejects with an error observation, so a
malformed action does not silently end the episode.
"""

from __future__ import annotations

import json
import re

from verl.experimental.agent_loop.tool_parser import FunctionCall, ToolParser
from verl.utils.ray_utils import get_event_loop

from minio3_ext.core.jsonish import JsonishError, loads_tolerant

__all__ = ["Minio3ToolParser", "NAME", "STOP"]

NAME = "minio3"
#: Generation stops at this string; it stays in the output (vLLM ``stop`` +
#: ``include_stop_str_in_output``), as in the released rollout code.
STOP = "</grounding>"
_GROUNDING_RE = re.compile(r"<grounding>(.*?)(?:</grounding>|$)", re.DOTALL)


@ToolParser.register(NAME)
class Minio3ToolParser(ToolParser):
    """``<grounding>`` → ``zoom`` call. Only the first action of a turn counts."""

    async def extract_tool_calls(self, responses_ids: list[int], tools=None) -> tuple[str, list[FunctionCall]]:
        text = await get_event_loop().run_in_executor(None, self.tokenizer.decode, responses_ids)
        return text, self.parse(text)

    @staticmethod
    def parse(text: str) -> list[FunctionCall]:
        start, answer = text.find("<grounding>"), text.find("<answer>")
        if start < 0 or 0 <= answer < start:  # the first action of the turn is not a zoom
            return []
        body = _GROUNDING_RE.search(text, start).group(1)
        try:
            arguments = loads_tolerant(body)
        except JsonishError:
            return [FunctionCall(name="zoom", arguments=body)]
        return [FunctionCall(name="zoom", arguments=json.dumps(arguments, ensure_ascii=False))]
