"""Fixtures for the verl plugin tests: a scripted stand-in for verl's LLM server
client (what verl's own CPU agent-loop tests fake). ``generate`` returns the next
scripted assistant turn as token ids, cut at ``sampling_params["max_tokens"]`` as vLLM
cuts a generation (verl's server passes it through)."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from verl.workers.rollout.replica import TokenOutput

CASE_RE = re.compile(r"case=(\w+)")


class ScriptedServer:
    """Picks the script by the ``case=<name>`` marker in the prompt; one turn per call."""

    def __init__(self, tokenizer, scripts: dict[str, list[str]]):
        self.tokenizer = tokenizer
        self.scripts = scripts
        self.calls: dict[str, list[dict]] = defaultdict(list)

    async def generate(self, request_id, *, prompt_ids, sampling_params, image_data=None, **kwargs) -> TokenOutput:
        context = self.tokenizer.decode(prompt_ids)
        case = CASE_RE.search(context).group(1)
        turn = len(self.calls[case])
        self.calls[case].append({"context": context, "images": list(image_data or []), "sampling_params": sampling_params})
        script = self.scripts[case]
        text = script[min(turn, len(script) - 1)]
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if sampling_params.get("max_tokens") is not None:
            ids = ids[: sampling_params["max_tokens"]]
        return TokenOutput(token_ids=ids, stop_reason="completed")


@pytest.fixture
def scripted_server():
    """``scripted_server(tokenizer, scripts)`` → a :class:`ScriptedServer`."""
    return ScriptedServer
