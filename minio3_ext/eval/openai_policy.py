"""A policy backed by an OpenAI-compatible chat endpoint (e.g. ``vllm serve``).

Converts the runner's messages (:mod:`.runner`) to the OpenAI chat format: images
become base64 data URLs, and ``tool`` observations (hermes dialect) become user turns
wrapped in ``<tool_response>`` — the way Qwen chat templates render tool results —
because OpenAI ``tool`` messages cannot carry images. Generation stops at the action's
closing tag (``</grounding>`` or ``</tool_call>``); OpenAI servers drop the stop
string, so it is put back. A 400 reply saying the prompt exceeds the model's context
ends the episode as ``context_limit`` (:class:`~.runner.ContextLimitExceeded`).
"""

from __future__ import annotations

import base64
import io
import re
import weakref
from typing import Any, Mapping, Sequence

from PIL import Image

from .runner import ContextLimitExceeded

__all__ = ["OpenAIPolicy", "to_openai_messages", "image_data_url"]

#: How vLLM and OpenAI word a request that exceeds the model's context.
_CONTEXT_RE = re.compile(r"maximum context length|context length exceeded|context_length_exceeded|too many tokens"
                         r"|prompt is too long|exceeds the model's context", re.IGNORECASE)
_CLOSE = {"<grounding>": "</grounding>", "<tool_call>": "</tool_call>"}


def image_data_url(image: Image.Image, fmt: str = "png") -> str:
    buf = io.BytesIO()
    fmt = fmt.lower()
    image.convert("RGB").save(buf, format="JPEG" if fmt in ("jpg", "jpeg") else fmt.upper(), **({"quality": 95} if fmt in ("jpg", "jpeg") else {}))
    mime = "jpeg" if fmt in ("jpg", "jpeg") else fmt
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class _UrlCache:
    """Encodes each image once per policy: the whole history is resent every turn."""

    def __init__(self, fmt: str):
        self.fmt = fmt
        self._urls: dict[int, tuple[weakref.ref, str]] = {}

    def __call__(self, image: Image.Image) -> str:
        hit = self._urls.get(id(image))
        if hit is not None and hit[0]() is image:
            return hit[1]
        url = image_data_url(image, self.fmt)
        self._urls = {k: v for k, v in self._urls.items() if v[0]() is not None}
        self._urls[id(image)] = (weakref.ref(image), url)
        return url


def to_openai_messages(messages: Sequence[Mapping[str, Any]], encode=image_data_url) -> list[dict[str, Any]]:
    """Runner messages → OpenAI chat messages (see module doc)."""
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        parts = []
        for p in content:
            if p["type"] == "image":
                parts.append({"type": "image_url", "image_url": {"url": encode(p["image"])}})
            else:
                parts.append({"type": "text", "text": p["text"]})
        role = m["role"]
        if role == "tool":
            role = "user"
            parts = [{"type": "text", "text": "<tool_response>\n"}, *parts, {"type": "text", "text": "\n</tool_response>"}]
        if role in ("system", "assistant") and all(p["type"] == "text" for p in parts):
            out.append({"role": role, "content": "".join(p["text"] for p in parts)})
        else:
            out.append({"role": role, "content": parts})
    return out


def restore_stop(text: str) -> str:
    """Close an action tag that generation stopped at (the server dropped the stop string)."""
    for open_tag, close_tag in _CLOSE.items():
        start = text.rfind(open_tag)
        if start >= 0 and text.find(close_tag, start) < 0:
            return text + close_tag
    return text


class OpenAIPolicy:
    """``await policy(messages) -> str`` against ``base_url`` (``/v1`` of the server)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "EMPTY",
        dialect: str = "minio3",
        temperature: float = 1.0,
        max_tokens: int = 8192,
        timeout: float = 600.0,
        max_retries: int = 3,
        image_format: str = "png",
        extra_body: Mapping[str, Any] | None = None,
    ):
        from openai import AsyncOpenAI

        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.stop = ["</grounding>"] if dialect == "minio3" else ["</tool_call>"]
        self.extra_body = dict(extra_body or {})
        self._encode = _UrlCache(image_format)

    async def __call__(self, messages: Sequence[Mapping[str, Any]]) -> str:
        from openai import BadRequestError

        try:
            response = await self.client.chat.completions.create(
                model=self.model, messages=to_openai_messages(messages, self._encode),
                temperature=self.temperature, max_tokens=self.max_tokens, stop=self.stop,
                extra_body=self.extra_body or None,
            )
        except BadRequestError as e:
            if _CONTEXT_RE.search(str(e)):
                raise ContextLimitExceeded(str(e)) from e
            raise
        choice = response.choices[0]
        text = choice.message.content or ""
        return restore_stop(text) if choice.finish_reason == "stop" else text
