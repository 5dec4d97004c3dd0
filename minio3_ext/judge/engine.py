"""The :class:`Judge`: rule path → dedupe → cache → bounded, retried LLM calls.

Usage with any OpenAI-compatible endpoint (``pip install minio3-ext[judge]``)::

    # e.g. `vllm serve Qwen/Qwen2.5-72B-Instruct --port 8000`, or a hosted model
    from minio3_ext.judge import Judge, JudgeConfig, JudgeItem

    judge = Judge(JudgeConfig(base_url="http://localhost:8000/v1", api_key=None,
                              model="Qwen/Qwen2.5-72B-Instruct", cache_path="judge.sqlite"))
    verdicts = judge.score_sync([JudgeItem("What colour is the car?", "red", "crimson")])
    verdicts[0].score   # 1.0, 0.0, or None (unscorable: exclude the sample, never score it 0)
    judge.metrics()     # {"calls": 1.0, "cache_hits": 0.0, ...}

Inside async code use ``await judge.score(items)``. ``JudgeConfig.from_env()`` reads
``MINIO3_JUDGE_BASE_URL``, ``MINIO3_JUDGE_API_KEY``, ``MINIO3_JUDGE_MODEL`` etc.

Pipeline per batch: items without a prediction score 0; the rule path
(:mod:`minio3_ext.judge.rules`) decides certain cases; the rest are grouped by
(question, ground truth, normalised prediction) and each group is asked once, or
read from the sqlite cache, or joins an identical request already in flight from a
concurrent ``score`` call on the same event loop.

The ``openai`` package is imported lazily, on the first LLM call: rule-only mode and
importing this module need only the standard library.

Preset ``released`` (:mod:`minio3_ext.judge.released`): no rule path, no dedupe by
default, the released messages and verdict parsing, temperature ``min(0.2·attempt, 1)``
over ``max_retries + 1`` (5) attempts; an HTTP 429 waits ``rate_limit_wait_s`` (3 s) and
is not counted as an attempt; any other failure waits ``error_wait_s`` (1 s). After the
last attempt the item is unscorable, as in the hardened preset (never a 0).

Failure policy (``hardened``): timeouts, connection errors, 408/409/429/5xx, a malformed response
body and a reply without a parseable verdict are retried ``max_retries`` times with
exponential backoff and ±50% jitter (a 429's ``Retry-After`` is honoured, capped at
``backoff_max_s``); after the last try the item is **unscorable** (``score=None``).
401/403/404 mean the judge is misconfigured: :class:`JudgeConfigError` is raised
rather than silently excluding every sample. Other 4xx make that item unscorable at
once. The openai client's own retries are disabled (``max_retries=0``) so that every
try is counted in :meth:`Judge.metrics`.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import random
import sqlite3
import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Sequence

from minio3_ext.core.answers import extract_answer

from . import released
from .cache import VerdictCache, cache_key
from .config import JudgeConfig, JudgeConfigError
from .prompt import PROMPT_VERSION, build_messages, parse_verdict, sanitize
from .rules import dedupe_form, exact_match, rule_verdict

__all__ = ["Judge", "JudgeItem", "Verdict", "SOURCES"]

SOURCES = ("rule", "llm", "cache", "no_answer", "unscorable")
_FATAL_STATUS = {401, 403, 404}
_RETRY_STATUS = {408, 409, 429}


@dataclass(frozen=True)
class JudgeItem:
    """One sample to judge. ``prediction`` is the *extracted* answer
    (:func:`minio3_ext.core.answers.extract_answer`); ``None`` means the trajectory had
    no ``<answer>`` tag and scores 0 without a call."""

    question: str
    ground_truth: str
    prediction: str | None

    @classmethod
    def from_completion(cls, question: str, ground_truth: str, completion: str | None) -> "JudgeItem":
        """Build from a whole trajectory text: the prediction is its first
        ``<answer>…</answer>`` (stripped, length-capped), ``None`` without one."""
        return cls(question, ground_truth, extract_answer(completion))


@dataclass(frozen=True)
class Verdict:
    score: float | None
    """1.0 correct, 0.0 wrong, ``None`` unscorable (exclude the sample; never a 0)."""
    source: str
    """``rule`` | ``llm`` | ``cache`` | ``no_answer`` | ``unscorable``."""
    error: str | None = None
    """Why the sample is unscorable (last failure), else ``None``."""
    reply: str | None = None
    """The judge's raw reply text, for ``llm`` verdicts."""
    attempts: int = 0
    """Requests made for this verdict (0 for rule/cache/no_answer)."""

    @property
    def scorable(self) -> bool:
        return self.score is not None


class _Retryable(Exception):
    def __init__(self, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind, self.retry_after = kind, retry_after


class _Final(Exception):
    """Not worth retrying; the item becomes unscorable now."""


_METRIC_KEYS = (
    "items", "calls", "llm_verdicts", "rule_decisions", "no_answer", "cache_hits", "dedupe_saves",
    "retries", "unscorable", "errors_timeout", "errors_rate_limit", "errors_server", "errors_connection",
    "errors_malformed", "errors_unparseable", "errors_other", "errors_cache",
)


class Judge:
    """Scores :class:`JudgeItem` batches; see the module docstring."""

    def __init__(self, config: JudgeConfig | None = None):
        self.config = config or JudgeConfig()
        self.cache: VerdictCache | None = None
        if self.config.cache_path and not self.config.rule_only:
            try:
                self.cache = VerdictCache(self.config.cache_path)
            except (sqlite3.Error, OSError) as e:
                raise JudgeConfigError(f"JudgeConfig.cache_path={self.config.cache_path!r} is unusable: {e}") from e
        self._lock = threading.Lock()
        self._counts: dict[str, float] = {k: 0.0 for k in _METRIC_KEYS}
        self._reset_latency()
        self._per_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple]" = (
            weakref.WeakKeyDictionary())

    # ------------------------------------------------------------------ public API
    async def score(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        """Verdicts in item order. Raises ``ValueError`` naming the bad item, and
        :class:`JudgeConfigError` when the endpoint rejects the configuration."""
        cfg = self.config
        verdicts: list[Verdict | None] = [None] * len(items)
        groups: dict[Any, list[int]] = {}
        prepared: dict[int, tuple[str, str, str]] = {}
        for i, item in enumerate(items):
            _validate(i, item)
            if item.prediction is None:
                verdicts[i] = Verdict(0.0, "no_answer")
                continue
            cap = sanitize if cfg.preset == "hardened" else _truncate
            q = cap(item.question, cfg.max_question_chars)
            gt = cap(item.ground_truth, cfg.max_question_chars)
            pred = cap(item.prediction, len(item.prediction))  # capped once, where the episode recorded it
            rule = rule_verdict(q, gt, pred) if cfg.use_rules else None
            if rule is None and cfg.rule_only:
                rule = 1.0 if exact_match(gt, pred) else 0.0
            if rule is not None:
                verdicts[i] = Verdict(rule, "rule")
                continue
            prepared[i] = (q, gt, pred)
            key = (q, gt, self._cache_form(pred)) if cfg.dedupe else i
            groups.setdefault(key, []).append(i)

        reps = {key: members[0] for key, members in groups.items()}
        settings = cfg.key_settings()
        version = settings["prompt_version"]
        keys = {key: cache_key(settings, *prepared[rep][:2], self._cache_form(prepared[rep][2]))
                for key, rep in reps.items()}
        cached = await self._cache_get(list(keys.values()))
        to_ask = [key for key in groups if keys[key] not in cached]
        for key in groups:
            if keys[key] in cached:
                for i in groups[key]:
                    verdicts[i] = Verdict(cached[keys[key]], "cache")

        results, owned = await self._ask_shared([keys[key] for key in to_ask], [prepared[reps[key]] for key in to_ask])
        fresh = []
        for key, verdict, own in zip(to_ask, results, owned):
            for i in groups[key]:
                verdicts[i] = verdict
            if own and verdict.source == "llm":
                fresh.append((keys[key], verdict.score, cfg.model or "", version, verdict.reply))
        if fresh:
            await self._cache_put(fresh)

        done = [v for v in verdicts if v is not None]
        if len(done) != len(items):  # an invariant: every path above sets a verdict
            raise RuntimeError(f"judge bug: {len(items) - len(done)} items left without a verdict")
        with self._lock:
            c = self._counts
            c["items"] += len(items)
            c["no_answer"] += sum(v.source == "no_answer" for v in done)
            c["rule_decisions"] += sum(v.source == "rule" for v in done)
            c["unscorable"] += sum(v.score is None for v in done)
            c["cache_hits"] += len(groups) - len(to_ask)
            c["dedupe_saves"] += sum(len(m) - 1 for m in groups.values()) + owned.count(False)
            c["llm_verdicts"] += sum(r.source == "llm" for r, own in zip(results, owned) if own)
        return done

    def score_sync(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        """Blocking :meth:`score`; works with or without a running event loop."""
        async def run() -> list[Verdict]:
            try:
                return await self.score(items)
            finally:
                await self._close_loop_client()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(run())
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from async code
            return pool.submit(asyncio.run, run()).result()

    def metrics(self) -> dict[str, float]:
        """Cumulative counters since construction (or :meth:`reset_metrics`).

        ``calls``: HTTP requests made; ``cache_hits``/``dedupe_saves``: calls saved;
        ``retries``: tries after the first; ``unscorable``: items left without a
        score; ``latency_*_s``: per request that got a response; ``errors_*``: failed
        tries by kind.
        """
        with self._lock:
            out = dict(self._counts)
            recent = sorted(self._recent_latencies)
            out["latency_mean_s"] = self._latency_sum / self._latency_n if self._latency_n else 0.0
            out["latency_max_s"] = self._latency_max
        out["latency_p50_s"] = recent[len(recent) // 2] if recent else 0.0  # over the last 10k requests
        out["unscorable_rate"] = out["unscorable"] / out["items"] if out["items"] else 0.0
        return out

    def reset_metrics(self) -> None:
        with self._lock:
            self._counts = {k: 0.0 for k in _METRIC_KEYS}
            self._reset_latency()

    def _reset_latency(self) -> None:
        self._latency_sum, self._latency_n, self._latency_max = 0.0, 0, 0.0
        self._recent_latencies: collections.deque[float] = collections.deque(maxlen=10_000)

    async def aclose(self) -> None:
        await self._close_loop_client()

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def __getstate__(self) -> dict:
        """Picklable (e.g. shipped to a Ray worker): config and counters travel; the
        cache handle, clients and locks are rebuilt on the other side."""
        with self._lock:
            latency = (self._latency_sum, self._latency_n, self._latency_max, list(self._recent_latencies))
            return {"config": self.config, "counts": dict(self._counts), "latency": latency}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["config"])
        self._counts.update(state["counts"])
        self._latency_sum, self._latency_n, self._latency_max, recent = state["latency"]
        self._recent_latencies.extend(recent)

    # ------------------------------------------------------------------ internals
    @property
    def _prompt_version(self) -> str:
        return self.config.key_settings()["prompt_version"]

    def _cache_form(self, prediction: str) -> str:
        # the released judge sees the prediction verbatim: "The red." and "red" are two questions
        return prediction if self.config.preset == "released" else dedupe_form(prediction)

    async def _cache_get(self, keys: list[str]) -> dict[str, float]:
        if self.cache is None or not keys:
            return {}
        try:
            return await asyncio.to_thread(self.cache.get_many, keys, self._cache_entry_bad)
        except sqlite3.Error as e:  # a broken cache costs calls, never the batch
            self._cache_failed("read", e)
            return {}

    async def _cache_put(self, rows: list) -> None:
        if self.cache is None:
            return
        try:
            await asyncio.to_thread(self.cache.put_many, rows)
        except sqlite3.Error as e:
            self._cache_failed("write", e)

    def _cache_entry_bad(self, key: str, score: object) -> None:
        self._cache_failed("read", f"entry {key[:12]} holds {score!r}, not a score in [0, 1]; judging it again")

    def _cache_failed(self, what: str, error: object) -> None:
        self._count("errors_cache")
        warnings.warn(f"judge cache {what} failed on {self.config.cache_path}: {error}", RuntimeWarning, stacklevel=3)

    def _count(self, key: str, n: float = 1.0) -> None:
        with self._lock:
            self._counts[key] += n

    def _loop_state(self) -> tuple[Any, asyncio.Semaphore, dict[str, asyncio.Future]]:
        """Per event loop (all three are loop-bound): the client, the concurrency
        semaphore, and the requests in flight by cache key."""
        loop = asyncio.get_running_loop()
        state = self._per_loop.get(loop)
        if state is None:
            try:
                import openai
            except ImportError as e:
                raise JudgeConfigError("the LLM judge needs the openai package: pip install 'minio3-ext[judge]'") from e

            cfg = self.config
            client = openai.AsyncOpenAI(base_url=cfg.base_url, api_key=cfg.resolved_api_key(), timeout=cfg.timeout_s, max_retries=0)
            state = (client, asyncio.Semaphore(cfg.concurrency), {})
            self._per_loop[loop] = state
        return state

    async def _close_loop_client(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        state = self._per_loop.pop(loop, None)
        if state is not None:
            await state[0].close()

    async def _ask_shared(self, keys: list[str], prepared: list[tuple[str, str, str]]
                          ) -> tuple[list[Verdict], list[bool]]:
        """Ask for each key, joining a request already in flight on this loop for the
        same key (concurrent ``score`` calls, e.g. per-sample async reward functions,
        then share one request). Returns the verdicts and whether this call owned
        each request."""
        if not keys:
            return [], []
        if not self.config.dedupe:
            return await self._ask_all(prepared), [True] * len(keys)
        inflight = self._loop_state()[2]
        loop = asyncio.get_running_loop()
        joined = {k: inflight[k] for k in keys if k in inflight}
        mine = {k: loop.create_future() for k in keys if k not in joined}
        inflight.update(mine)
        try:
            own_results = await self._ask_all([p for k, p in zip(keys, prepared) if k in mine])
            for future, verdict in zip(mine.values(), own_results):
                future.set_result(verdict)
        except BaseException as e:
            for future in mine.values():
                if not future.done():
                    future.set_exception(e if isinstance(e, Exception) else RuntimeError("judge request cancelled"))
                    future.exception()  # mark retrieved: nobody may be waiting
            raise
        finally:
            for k in mine:
                inflight.pop(k, None)
        results = [mine[k].result() if k in mine else await asyncio.shield(joined[k]) for k in keys]
        return results, [k in mine for k in keys]

    async def _ask_all(self, prepared: list[tuple[str, str, str]]) -> list[Verdict]:
        tasks = [asyncio.ensure_future(self._ask(*p)) for p in prepared]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _ask(self, question: str, ground_truth: str, prediction: str) -> Verdict:
        if self.config.preset == "released":
            return await self._ask_released(question, ground_truth, prediction)
        cfg = self.config
        client, semaphore, _ = self._loop_state()
        temperature = 0.0
        last_error = "no try made"
        attempts = 0
        for attempt in range(cfg.max_retries + 1):
            if attempt:
                self._count("retries")
            attempts += 1
            retry_after = None
            try:
                async with semaphore:
                    reply = await self._request(client, build_messages(question, ground_truth, prediction), temperature)
                score = parse_verdict(reply)
                if score is not None:
                    return Verdict(score, "llm", reply=reply, attempts=attempts)
                self._count("errors_unparseable")
                last_error = f"unparseable verdict: {reply[:200]!r}"
                temperature = cfg.retry_temperature
            except _Retryable as e:
                self._count(f"errors_{e.kind}")
                last_error, retry_after = f"{e.kind}: {e}", e.retry_after
            except _Final as e:
                self._count("errors_other")
                return Verdict(None, "unscorable", error=str(e), attempts=attempts)
            if attempt < cfg.max_retries:
                await asyncio.sleep(self._backoff(attempt, retry_after))
        return Verdict(None, "unscorable", error=f"after {attempts} tries: {last_error}", attempts=attempts)

    async def _ask_released(self, question: str, ground_truth: str, prediction: str) -> Verdict:
        """The released retry schedule (see the module docstring)."""
        cfg = self.config
        client, semaphore, _ = self._loop_state()
        messages = released.build_messages(question, ground_truth, prediction)
        attempt, requests, waits = 0, 0, 0
        last_error = "no try made"
        while attempt <= cfg.max_retries:
            if requests:
                self._count("retries")
            requests += 1
            try:
                async with semaphore:
                    reply = await self._request(client, messages, released.temperature(attempt))
                score = released.parse_verdict(reply)
                if score is not None:
                    return Verdict(score, "llm", reply=reply, attempts=requests)
                self._count("errors_unparseable")
                last_error = f"no verdict after 'score:' in {reply[:200]!r}"
            except _Retryable as e:
                self._count(f"errors_{e.kind}")
                last_error = f"{e.kind}: {e}"
                if e.kind == "rate_limit" and waits < cfg.max_rate_limit_waits:
                    waits += 1
                    await asyncio.sleep(cfg.rate_limit_wait_s)
                    continue  # not an attempt
            except _Final as e:
                self._count("errors_other")
                last_error = str(e)
            attempt += 1
            if attempt <= cfg.max_retries:
                await asyncio.sleep(cfg.error_wait_s)
        return Verdict(None, "unscorable", error=f"after {attempt} attempts: {last_error}", attempts=requests)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cfg = self.config
        wait = cfg.backoff_base_s * (2 ** attempt) * (0.5 + random.random())
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, cfg.backoff_max_s)

    async def _request(self, client: Any, messages: list[dict], temperature: float) -> str:
        """One request → reply text; failures mapped to :class:`_Retryable` / :class:`_Final`."""
        import openai

        cfg = self.config
        self._count("calls")
        t0 = time.perf_counter()
        try:
            resp = await asyncio.wait_for(client.chat.completions.create(
                model=cfg.model, messages=messages, temperature=temperature, max_tokens=cfg.max_tokens), cfg.timeout_s)
        except (asyncio.TimeoutError, openai.APITimeoutError) as e:
            raise _Retryable("timeout", f"no reply within {cfg.timeout_s:g}s") from e
        except openai.APIConnectionError as e:
            raise _Retryable("connection", f"{e} ({e.__cause__!r})") from e
        except openai.APIStatusError as e:
            code = e.status_code
            if code in _FATAL_STATUS:
                raise JudgeConfigError(
                    f"judge endpoint {cfg.base_url} answered HTTP {code} for model {cfg.model!r}: {e.message}") from e
            if code == 429:
                raise _Retryable("rate_limit", f"HTTP 429: {e.message}", _retry_after(e.response)) from e
            if code >= 500 or code in _RETRY_STATUS:
                raise _Retryable("server", f"HTTP {code}: {e.message}", _retry_after(e.response)) from e
            raise _Final(f"HTTP {code}: {e.message}") from e
        except JudgeConfigError:
            raise
        except Exception as e:  # malformed body: JSON or schema errors from the client
            raise _Retryable("malformed", f"malformed response: {type(e).__name__}: {e}") from e
        latency = time.perf_counter() - t0
        with self._lock:
            self._latency_sum += latency
            self._latency_n += 1
            self._latency_max = max(self._latency_max, latency)
            self._recent_latencies.append(latency)
        try:
            text = resp.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as e:
            raise _Retryable("malformed", f"response without choices[0].message: {e}") from e
        if not isinstance(text, str):
            raise _Retryable("malformed", "response message has no text content")
        return text


def _truncate(text: str, max_chars: int) -> str:
    return text[:max_chars]


def _retry_after(response: Any) -> float | None:
    try:
        value = response.headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


def _validate(i: int, item: Any) -> None:
    if not isinstance(item, JudgeItem):
        raise ValueError(f"items[{i}] is a {type(item).__name__}, expected JudgeItem")
    if not isinstance(item.question, str):
        raise ValueError(f"items[{i}].question must be a str, got {type(item.question).__name__}")
    if not isinstance(item.ground_truth, str) or not item.ground_truth.strip():
        raise ValueError(f"items[{i}].ground_truth must be a non-empty str, got {item.ground_truth!r}")
    if item.prediction is not None and not isinstance(item.prediction, str):
        raise ValueError(f"items[{i}].prediction must be a str or None, got {type(item.prediction).__name__}")
