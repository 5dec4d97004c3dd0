"""A policy backed by an OpenAI-compatible chat endpoint (vLLM, SGLang, ``transformers serve``, ...).

Converts the runner's messages (:mod:`.runner`) to the OpenAI chat format: images
become base64 data URLs (JPEG by default, encoded in a worker thread so that a large
history never blocks the other episodes in flight), and ``tool`` observations
(hermes dialect) become user turns wrapped in ``<tool_response>`` — the way Qwen chat
templates render tool results — because OpenAI ``tool`` messages cannot carry images.

Generation stops at the action's closing tag (the dialect's stop strings; ``stop=None``
sends none, for servers such as ``transformers serve`` that fail on ``stop``). OpenAI
servers drop the stop string, so it is put back — only when the server says that the
stop string matched (vLLM/SGLang's ``stop_reason``); a server that does not report
``stop_reason`` gets the tag back when ``finish_reason`` is ``"stop"`` and an action
tag is left open.

Every request states its whole sampling (:data:`SAMPLING_DEFAULTS`: temperature, top_p,
and as the extra fields vLLM's OpenAI server accepts, top_k, repetition_penalty and
min_p), so that nothing is taken from the checkpoint's ``generation_config.json``
(Qwen2.5-VL-Instruct ships top_k 1 and repetition penalty 1.05 there: near-greedy). A
server that rejects those extra fields by name (``transformers serve``: HTTP 422
"Unexpected fields") gets them in its ``generation_config`` field instead, from then on.

Server replies that are the model's limits, not failures, end the episode:
a prompt over the context → ``context_limit`` (:class:`~.runner.ContextLimitExceeded`),
more images than the server takes per prompt → ``image_limit``
(:class:`~.runner.ImageLimitExceeded`, with the limit when the message states it).
``max_tokens`` is clamped to the ``max_model_len`` that :meth:`OpenAIPolicy.preflight`
reads from ``GET /v1/models`` (or that a rejection states). Every other failure is an
:class:`EndpointError` carrying the server's full error text (``{"error": {"message"}}``,
FastAPI's ``{"detail": ...}`` or a plain-text body) and the URL;
:class:`EndpointConnectionError` (a ``ConnectionError``) when the server cannot be reached.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import weakref
from typing import Any, Mapping, Sequence

from PIL import Image

from ..core.dialect import Dialect, get_dialect
from .runner import ContextLimitExceeded, ImageLimitExceeded

__all__ = [
    "OpenAIPolicy", "EndpointError", "EndpointConnectionError", "EndpointUnreachable", "to_openai_messages", "image_data_url",
    "restore_stop", "server_error_text", "DEFAULT_IMAGE_FORMAT", "DEFAULT_JPEG_QUALITY", "SAMPLING_DEFAULTS",
    "EXTRA_SAMPLING_FIELDS", "TurnText",
]

DEFAULT_IMAGE_FORMAT = "jpeg"
DEFAULT_JPEG_QUALITY = 90

#: The released engine's sampling (Mini-o3 ``vllm_async_engine.py`` ~311-327: rollout temperature 1.0,
#: top_k -1, top_p 1 in an explicit ``SamplingParams``, whose repetition_penalty 1.0 and min_p 0 are neutral).
SAMPLING_DEFAULTS: dict[str, float | int] = {"temperature": 1.0, "top_p": 1.0, "top_k": -1,
                                             "repetition_penalty": 1.0, "min_p": 0.0}
#: Sampling fields outside the OpenAI schema, sent as extra body fields (vLLM and SGLang take them).
EXTRA_SAMPLING_FIELDS = ("top_k", "repetition_penalty", "min_p")
#: How ``transformers serve`` (and pydantic-validating servers) name request fields they reject.
_UNEXPECTED_FIELDS_RE = re.compile(r"unexpected fields?[^{\[]*[{\[]([^}\]]*)[}\]]|extra_forbidden|"
                                   r"extra inputs are not permitted", re.IGNORECASE)

#: How vLLM, SGLang and OpenAI word a request that exceeds the model's context.
_CONTEXT_RE = re.compile(r"maximum context length|context length exceeded|context_length_exceeded|too many tokens"
                         r"|prompt is too long|exceeds the model's context|longer than the maximum model length"
                         r"|input (?:tokens|length) exceed", re.IGNORECASE)
#: How servers word a per-prompt image limit (vLLM: "At most 4 image(s) may be provided in one prompt").
_IMAGE_LIMIT_RE = re.compile(r"at most (\d+) image|(\d+) images? (?:per|in one) prompt|limit_mm_per_prompt"
                             r"|too many images|maximum number of images", re.IGNORECASE)
_MAX_MODEL_LEN_RE = re.compile(r"max_model_len\s*[=:]?\s*(\d+)|maximum context length is (\d+)", re.IGNORECASE)
_PROMPT_TOKENS_RE = re.compile(r"(\d+) in the messages|has (\d+) input tokens|(\d+) (?:input|prompt) tokens",
                               re.IGNORECASE)
_MAX_TOKENS_RE = re.compile(r"max_tokens|max_completion_tokens|in the completion", re.IGNORECASE)


class TurnText(str):
    """An assistant turn's text; ``context_tokens`` is the whole context after it as the server
    counted it (``usage``: prompt + completion tokens), ``None`` when the server did not say."""

    context_tokens: int | None

    def __new__(cls, text: str, context_tokens: int | None = None) -> "TurnText":
        out = super().__new__(cls, text)
        out.context_tokens = context_tokens
        return out


def _context_tokens(usage: Any) -> int | None:
    prompt = getattr(usage, "prompt_tokens", None) or 0
    if prompt <= 0:  # no usage, or a server that does not count the prompt
        return None
    return int(prompt) + int(getattr(usage, "completion_tokens", None) or 0)


BAD_REPLY_TRIES = 3  # a 200 reply with no usable message: tries of one turn before the episode fails


def bad_reply(response: Any) -> str:
    """Why a 200 reply holds no usable message (``""`` when it does): a body that is not
    JSON (``None``), not a completion, no or empty ``choices``, a null message.

    >>> bad_reply(None)
    'a body that is not JSON'
    >>> from types import SimpleNamespace as N
    >>> bad_reply(N(choices=[]))
    'no choices'
    >>> bad_reply(N(choices=[N(message=None)]))
    'a null message'
    """
    if response is None:
        return "a body that is not JSON"
    if isinstance(response, (str, bytes)):
        return "a body that is not a chat completion"
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        return "no choices"
    if getattr(choices[0], "message", None) is None:
        return "a null message"
    return ""


class EndpointError(RuntimeError):
    """The endpoint rejected or failed a request; the message names the URL and the server's text."""


class EndpointConnectionError(EndpointError, ConnectionError):
    """The endpoint could not be reached (refused, reset, timed out)."""


class EndpointUnreachable(Exception):
    """``max_connection_errors`` requests in a row could not reach the endpoint: the run
    stops (deliberately not an ``OSError``/``RuntimeError``, so that it is not counted as
    one failed episode but ends the whole run)."""


def restore_stop(text: str, matched_stop: str | None = None, dialect: "str | Dialect" = "minio3") -> str:
    """Put back the stop string the server dropped (the dialect's rule).

    ``matched_stop`` is the stop string the server says matched. ``None`` means the
    server did not say (no ``stop_reason``): a stop string is put back only when the
    turn is an unfinished action that it completes.
    """
    d = get_dialect(dialect)
    if matched_stop is not None:
        return d.restore_stop(text, matched_stop)
    for stop in d.stop:  # "</x>" closes "<x>": put it back only when "<x>" is still open
        opening = stop.replace("</", "<", 1)
        if opening != stop and text.rfind(opening) > text.rfind(stop):
            return d.restore_stop(text, stop)
    return text


def image_data_url(image: Image.Image, fmt: str = DEFAULT_IMAGE_FORMAT, quality: int = DEFAULT_JPEG_QUALITY) -> str:
    """``image`` as a base64 data URL (``fmt``: ``jpeg`` or ``png``)."""
    buf = io.BytesIO()
    fmt = fmt.lower()
    if fmt in ("jpg", "jpeg"):
        image.convert("RGB").save(buf, format="JPEG", quality=int(quality))
        mime = "jpeg"
    else:
        image.convert("RGB").save(buf, format=fmt.upper())
        mime = fmt
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class _UrlCache:
    """Encodes each image once per policy: the whole history is resent every turn."""

    def __init__(self, fmt: str, quality: int = DEFAULT_JPEG_QUALITY):
        self.fmt = fmt
        self.quality = quality
        self._urls: dict[int, tuple[weakref.ref, str]] = {}

    def get(self, image: Image.Image) -> str | None:
        hit = self._urls.get(id(image))
        return hit[1] if hit is not None and hit[0]() is image else None

    def put(self, image: Image.Image, url: str) -> None:
        self._urls = {k: v for k, v in self._urls.items() if v[0]() is not None}
        self._urls[id(image)] = (weakref.ref(image), url)

    def __call__(self, image: Image.Image) -> str:
        url = self.get(image)
        if url is None:
            url = image_data_url(image, self.fmt, self.quality)
            self.put(image, url)
        return url

    async def prepare(self, messages: Sequence[Mapping[str, Any]]) -> None:
        """Encode every image of ``messages`` not encoded yet, in worker threads."""
        todo = {id(p["image"]): p["image"] for m in messages if not isinstance(m["content"], str)
                for p in m["content"] if p["type"] == "image" and self.get(p["image"]) is None}
        if not todo:
            return
        images = list(todo.values())
        urls = await asyncio.gather(*(asyncio.to_thread(image_data_url, im, self.fmt, self.quality) for im in images))
        for image, url in zip(images, urls):
            self.put(image, url)


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
            before, after = Dialect.tool_response_wrap()
            parts = [{"type": "text", "text": before}, *parts, {"type": "text", "text": after}]
        if role in ("system", "assistant") and all(p["type"] == "text" for p in parts):
            out.append({"role": role, "content": "".join(p["text"] for p in parts)})
        else:
            out.append({"role": role, "content": parts})
    return out


def server_error_text(error: BaseException) -> str:
    """The whole error a server sent: OpenAI's ``error.message``, FastAPI's ``detail``, or the
    raw body (the OpenAI client keeps only ``error.message`` in ``str(error)``)."""
    response = getattr(error, "response", None)
    body = None
    if response is not None:
        try:
            body = response.text.strip()
        except Exception:  # a streamed or closed body
            body = None
    if not body:
        body = getattr(error, "body", None)
        if body is not None and not isinstance(body, str):
            body = json.dumps(body, default=str)
    if not body:
        return str(error)
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return body
    parts = []
    if isinstance(data, Mapping):
        err = data.get("error", data)
        for key in ("message", "detail", "msg"):
            value = err.get(key) if isinstance(err, Mapping) else None
            if value is None and key == "detail":
                value = data.get("detail")
            if value:
                parts.append(value if isinstance(value, str) else json.dumps(value, default=str))
        if isinstance(err, str):
            parts.append(err)
    return "; ".join(parts) if parts else body


def _first_int(pattern: re.Pattern, text: str) -> int | None:
    m = pattern.search(text)
    if not m:
        return None
    for g in m.groups():
        if g is not None:
            return int(g)
    return None


class OpenAIPolicy:
    """``await policy(messages) -> str`` against ``base_url`` (``/v1`` of the server).

    ``stop=None`` (the default) uses the dialect's stop strings; ``stop=False`` sends none.
    ``extra_body`` is merged into every request (e.g. ``transformers serve``'s
    ``{"generation_config": "{\\"do_sample\\": true}"}``); the sampling fields are set with
    their own arguments (:data:`SAMPLING_DEFAULTS`), not through it.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "EMPTY",
        dialect: str | Dialect = "minio3",
        temperature: float = SAMPLING_DEFAULTS["temperature"],
        top_p: float = SAMPLING_DEFAULTS["top_p"],
        top_k: int = SAMPLING_DEFAULTS["top_k"],
        repetition_penalty: float = SAMPLING_DEFAULTS["repetition_penalty"],
        min_p: float = SAMPLING_DEFAULTS["min_p"],
        max_tokens: int = 8192,
        timeout: float = 600.0,
        max_retries: int = 3,
        image_format: str = DEFAULT_IMAGE_FORMAT,
        image_quality: int = DEFAULT_JPEG_QUALITY,
        stop: Sequence[str] | bool | None = None,
        extra_body: Mapping[str, Any] | None = None,
        max_connection_errors: int | None = 8,
    ):
        from openai import AsyncOpenAI

        self.base_url = base_url.rstrip("/")
        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
        self.timeout = timeout
        self.max_retries = max_retries
        self.model = model
        self.temperature = temperature
        self.sampling = {"temperature": float(temperature), "top_p": float(top_p), "top_k": int(top_k),
                         "repetition_penalty": float(repetition_penalty), "min_p": float(min_p)}
        clash = sorted(set(self.sampling) & set(extra_body or {}))
        if clash:
            raise ValueError(f"extra_body sets {', '.join(clash)}: set the sampling with its own argument")
        self.max_tokens = max_tokens
        self.max_model_len: int | None = None
        self.server_image_limit: int | None = None
        self.dialect = get_dialect(dialect)
        if stop is None or stop is True:
            self.stop: list[str] | None = list(self.dialect.stop)
        elif stop is False:
            self.stop = None
        else:
            self.stop = list(stop)
        self.extra_body = dict(extra_body or {})
        self.max_connection_errors = max_connection_errors
        self._connection_errors = 0
        self._unreachable: str | None = None
        self._encode = _UrlCache(image_format, image_quality)
        self.sampling_in_generation_config = False
        """True once the server rejected the extra sampling fields: they go in ``generation_config``."""

    # -- preflight -------------------------------------------------------------------------
    async def preflight(self) -> list[str]:
        """``GET /models``: the server is reachable, serves ``model``, and its
        ``max_model_len`` (when listed) clamps ``max_tokens``. Returns warnings (the
        server cannot list models); raises :class:`EndpointConnectionError` /
        :class:`EndpointError` naming the URL when the run cannot work."""
        import openai

        client = self.client.with_options(max_retries=0, timeout=min(float(self.timeout), 30.0))
        try:
            page = await client.models.list()
        except openai.APIConnectionError as e:
            raise EndpointConnectionError(f"cannot reach {self.base_url} ({_why(e)}); is the server running?") from None
        except openai.AuthenticationError as e:
            raise EndpointError(f"{self.base_url} rejected the API key (--api-key): {server_error_text(e)}") from None
        except openai.APIStatusError as e:
            if e.status_code == 404 and not _has_v1(self.base_url):
                raise EndpointError(_no_v1(self.base_url)) from None
            return [f"{self.base_url}/models answered HTTP {e.status_code} ({_short(server_error_text(e))}); "
                    f"cannot check that it serves {self.model!r}"]
        models = list(getattr(page, "data", []) or [])
        if not models:
            return [f"{self.base_url}/models lists no models; cannot check that it serves {self.model!r}"]
        ids = [str(getattr(m, "id", "")) for m in models]
        match = [m for m in models if getattr(m, "id", None) == self.model]
        if not match:
            raise EndpointError(f"{self.base_url} does not serve --model {self.model!r}; it serves: "
                                + ", ".join(repr(i) for i in ids[:10]))
        extra = getattr(match[0], "model_extra", None) or {}
        length = extra.get("max_model_len", getattr(match[0], "max_model_len", None))
        if isinstance(length, int) and length > 0:
            self.max_model_len = length
        return []

    def completion_budget(self) -> int:
        """``max_tokens`` sent: the requested one, clamped to the model's length when known."""
        if self.max_model_len is not None:
            return max(1, min(self.max_tokens, self.max_model_len))
        return self.max_tokens

    # -- one turn ------------------------------------------------------------------------
    async def __call__(self, messages: Sequence[Mapping[str, Any]]) -> str:
        if self._unreachable is not None:
            raise EndpointUnreachable(self._unreachable)
        try:
            text = await self._turn(messages)
        except EndpointConnectionError as e:
            self._connection_errors += 1
            limit = self.max_connection_errors
            if limit is not None and self._connection_errors >= limit and self._unreachable is None:
                self._unreachable = (f"{self._connection_errors} requests in a row could not reach {self.base_url}; "
                                     f"stopping the run (last: {e})")
            if self._unreachable is not None:
                raise EndpointUnreachable(self._unreachable) from None
            raise
        except (ContextLimitExceeded, ImageLimitExceeded, EndpointError):
            self._connection_errors = 0  # the server answered
            raise
        self._connection_errors = 0
        return text

    async def _turn(self, messages: Sequence[Mapping[str, Any]]) -> str:
        await self._encode.prepare(messages)
        chat = to_openai_messages(messages, self._encode)
        why = ""
        for _try in range(BAD_REPLY_TRIES):  # a 200 without a usable message is retried, then fails the episode
            response = await self._create(chat)
            why = bad_reply(response)
            if not why:
                return TurnText(self._text(response.choices[0]), _context_tokens(getattr(response, "usage", None)))
        raise EndpointError(f"{self.base_url} answered HTTP 200 with {why}, {BAD_REPLY_TRIES} times in a row")

    async def _create(self, chat: list[dict[str, Any]]) -> Any:
        """One chat completion (its sampling, budget shrinks and the server's sampling form);
        ``None`` when the 200 body is not JSON."""
        import openai

        max_tokens = self.completion_budget()
        shrinks = 0  # up to two smaller max_tokens, plus one retry in the server's sampling form
        for _attempt in range(4):
            kwargs: dict[str, Any] = dict(model=self.model, messages=chat, temperature=self.sampling["temperature"],
                                          top_p=self.sampling["top_p"], max_tokens=max_tokens)
            if self.stop:
                kwargs["stop"] = self.stop
            folded = self.sampling_in_generation_config
            request = self.client.chat.completions.create(**kwargs, extra_body=self.request_extra(max_tokens))
            try:
                # the client's timeout bounds each read, so a server that trickles bytes never hits it:
                # bound the whole request instead: each of the client's tries, and its back-off (8 s at most)
                return await asyncio.wait_for(request, self.timeout * (1 + self.max_retries) + 8.0 * self.max_retries)
            except asyncio.TimeoutError:
                raise EndpointError(f"{self.base_url}: no complete reply within --timeout {self.timeout:g}s "
                                    f"({1 + self.max_retries} tries)") from None
            except json.JSONDecodeError:
                return None
            except openai.APIConnectionError as e:
                raise EndpointConnectionError(f"cannot reach {self.base_url} ({_why(e)})") from None
            except openai.APIStatusError as e:
                text = server_error_text(e)
                if e.status_code == 404 and not _has_v1(self.base_url):
                    raise EndpointError(_no_v1(self.base_url)) from None
                if not folded and self._rejects_extra_fields(text):
                    self.sampling_in_generation_config = True  # this request and every later one
                    continue
                limit = _first_int(_IMAGE_LIMIT_RE, text)
                if _IMAGE_LIMIT_RE.search(text):
                    if limit is not None:
                        self.server_image_limit = limit
                    raise ImageLimitExceeded(text, limit=limit) from None
                smaller = self._smaller_budget(text, max_tokens) if shrinks < 2 else None
                if smaller is not None:
                    shrinks += 1
                    max_tokens = smaller  # the prompt fits; only the completion budget was too large
                    continue
                if _CONTEXT_RE.search(text):
                    raise ContextLimitExceeded(text) from None
                raise EndpointError(f"{self.base_url}: HTTP {e.status_code}: {_short(text)}") from None
        raise EndpointError(f"{self.base_url}: the request was refused 4 times (sampling form, completion budget)")

    def _text(self, choice: Any) -> str:
        text = choice.message.content or ""
        if not self.stop or choice.finish_reason != "stop":
            return text
        extra = getattr(choice, "model_extra", None) or {}
        if "stop_reason" in extra:  # the server says what stopped it (vLLM, SGLang)
            matched = extra["stop_reason"]
            return self.dialect.restore_stop(text, matched if isinstance(matched, str) else None)
        return restore_stop(text, None, self.dialect)  # the server does not say: only an unfinished action

    def request_extra(self, max_tokens: int) -> dict[str, Any]:
        """The request's fields beyond the OpenAI schema: the extra sampling fields (or, for a
        server that rejected them, the whole sampling in its ``generation_config``), then ``extra_body``."""
        extra = {k: self.sampling[k] for k in EXTRA_SAMPLING_FIELDS}
        if not self.sampling_in_generation_config:
            return {**extra, **self.extra_body}
        s = self.sampling
        config: dict[str, Any] = {"do_sample": s["temperature"] > 0, "temperature": s["temperature"],
                                  "top_p": s["top_p"], "top_k": max(0, s["top_k"]),  # HF: 0 = no top-k
                                  "repetition_penalty": s["repetition_penalty"], "max_new_tokens": max_tokens}
        if s["min_p"] > 0:
            config["min_p"] = s["min_p"]
        body = dict(self.extra_body)
        given = body.pop("generation_config", None)
        if given:  # the user's own generation_config keys win
            config.update(json.loads(given) if isinstance(given, str) else dict(given))
        return {**body, "generation_config": json.dumps(config)}

    @staticmethod
    def _rejects_extra_fields(text: str) -> bool:
        """True when the server's error ``text`` rejects the extra sampling fields."""
        m = _UNEXPECTED_FIELDS_RE.search(text)
        if m is None:
            return False
        named = m.group(1)
        return named is None or any(f in named for f in EXTRA_SAMPLING_FIELDS)

    def _smaller_budget(self, text: str, current: int) -> int | None:
        """A ``max_tokens`` the server would take, when its rejection says the prompt fits."""
        length = _first_int(_MAX_MODEL_LEN_RE, text)
        if length is None or not _MAX_TOKENS_RE.search(text):
            return None
        self.max_model_len = length if self.max_model_len is None else min(self.max_model_len, length)
        prompt = _first_int(_PROMPT_TOKENS_RE, text)
        budget = length - prompt if prompt is not None else length
        if prompt is not None and budget < 1:
            return None
        return budget if budget < current else None


def _has_v1(base_url: str) -> bool:
    from urllib.parse import urlparse

    return urlparse(base_url).path.rstrip("/").endswith("/v1")


def _no_v1(base_url: str) -> str:
    fixed = base_url.rstrip("/") + "/v1"
    return (f"{base_url} answered HTTP 404 and its path does not end in /v1; OpenAI-compatible servers "
            f"(vLLM, SGLang, transformers serve) answer under /v1: pass --base-url {fixed}")


def _why(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__
    text = str(cause) if cause is not None and str(cause) else str(error)
    return _short(text or type(error).__name__)


def _short(text: str, limit: int = 500) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
