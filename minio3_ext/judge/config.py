"""Judge configuration: a dataclass, filled from arguments or ``MINIO3_JUDGE_*`` env vars."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

__all__ = ["JudgeConfig", "JudgeConfigError", "ENV_PREFIX", "PRESETS", "PRESET_DEFAULTS", "KEYED", "NOT_KEYED"]

ENV_PREFIX = "MINIO3_JUDGE_"

#: Judge presets: ``hardened`` (the package's injection-hardened prompt, rule path,
#: dedupe) and ``released`` (the Mini-o3 authors' reward, :mod:`minio3_ext.judge.released`).
PRESETS = ("hardened", "released")

#: Values of the fields left unset (``None``), per preset.
PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "hardened": {"timeout_s": 30.0, "max_retries": 5, "max_tokens": 64, "use_rules": True, "dedupe": True},
    # released general_qa_tool.py: timeout=120, max_tokens=16384, 5 tries, every row asked
    "released": {"model": "gpt-4o-2024-11-20", "timeout_s": 120.0, "max_retries": 4, "max_tokens": 16384,
                 "use_rules": False, "dedupe": False},
}


#: The :class:`JudgeConfig` fields that decide a verdict: each keys the verdict cache and
#: ``minio3 eval``'s resume (:meth:`JudgeConfig.key_settings`), with the prompt/parser version.
KEYED = ("preset", "base_url", "model", "max_tokens", "retry_temperature",
         "max_question_chars", "use_rules", "dedupe")
#: The fields that do not decide a verdict, each with the reason. A field in neither
#: :data:`KEYED` nor here makes :meth:`JudgeConfig.key_settings` raise: every new setting is decided.
NOT_KEYED: dict[str, str] = {
    "api_key": "a credential: it grants access to a judge, it does not choose one (and is never written down)",
    "cache_path": "where verdicts are kept, not what they are",
    "concurrency": "how many requests are in flight at once",
    "timeout_s": "how long one request may take; a request that runs out makes no verdict",
    "max_retries": "how many tries before an item is unscorable; a verdict read on try n does not depend on it",
    "backoff_base_s": "a wait between tries",
    "backoff_max_s": "a wait between tries",
    "rate_limit_wait_s": "a wait between tries",
    "max_rate_limit_waits": "how many rate-limit waits before an item is unscorable; no verdict depends on it",
    "error_wait_s": "a wait between tries",
}


class JudgeConfigError(ValueError):
    """A judge setting is invalid, or the endpoint rejected the configuration (401/403/404)."""


@dataclass(frozen=True)
class JudgeConfig:
    """Where and how to ask the judge model.

    ``base_url=None`` selects **rule-only mode**: no network; the rule path decides and,
    where it is not certain, normalised exact match decides (1 if the normalised
    prediction equals the normalised ground truth, else 0). That is a deterministic
    rule, not a semantic judgement: use it for tests and offline smoke runs only.
    """

    preset: str = "hardened"
    """``hardened`` (default: fenced JSON prompt, rule path, dedupe) or ``released``
    (the authors' prompts byte for byte, their verdict parsing, temperature
    ``min(0.2·attempt, 1)`` over 5 tries, every answered row asked; needs an endpoint).
    Fields left ``None`` take the preset's value (:data:`PRESET_DEFAULTS`)."""
    base_url: str | None = None
    """OpenAI-compatible endpoint, e.g. ``http://localhost:8000/v1`` (a ``vllm serve``)."""
    api_key: str | None = None
    """Bearer key; ``None`` falls back to ``$OPENAI_API_KEY``, else the placeholder
    ``"EMPTY"`` (what a keyless ``vllm serve`` accepts)."""
    model: str | None = None
    """Model name as the endpoint knows it, e.g. ``Qwen/Qwen2.5-72B-Instruct``
    (``released`` preset default: ``gpt-4o-2024-11-20``)."""
    timeout_s: float | None = None
    """Deadline for one request, connect to last byte (30 s; ``released``: 120 s)."""
    max_retries: int | None = None
    """Retries after the first try (5; ``released``: 4, i.e. the paper's 5 tries); then
    the sample is unscorable."""
    backoff_base_s: float = 0.5
    """First retry waits about this long; each later retry doubles it (with ±50% jitter)."""
    backoff_max_s: float = 20.0
    """Cap on one backoff wait, including a server's ``Retry-After``."""
    concurrency: int = 32
    """Requests in flight at once (per event loop)."""
    cache_path: str | None = None
    """sqlite file for the persistent verdict cache; ``None`` disables it."""
    max_tokens: int | None = None
    """Completion budget for the verdict (64; ``released``: 16,384)."""
    retry_temperature: float = 0.3
    """Sampling temperature after an unparseable verdict (the first try always uses 0:
    repeating a greedy request would repeat the unparseable reply). ``hardened`` only:
    ``released`` uses ``min(0.2 * attempt, 1.0)``."""
    rate_limit_wait_s: float = 3.0
    """``released`` only: wait after HTTP 429 before asking again; such a try does not
    count as an attempt (as in the released code)."""
    max_rate_limit_waits: int = 200
    """``released`` only: uncounted 429 waits allowed per item before it is
    unscorable (the released code waits forever; this bounds it)."""
    error_wait_s: float = 1.0
    """``released`` only: wait after any other failed attempt."""
    max_question_chars: int = 4000
    """Questions and ground truths are cut to this length before judging."""
    use_rules: bool | None = None
    """Decide certain cases (exact/letter/number/yes-no match) without a call (on;
    ``released``: off, and it cannot be turned on)."""
    dedupe: bool | None = None
    """Judge identical (question, ground truth, normalised prediction) once per batch
    (on; ``released``: off, every answered row is asked)."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise JudgeConfigError(f"JudgeConfig.preset={self.preset!r} is unknown; expected one of {PRESETS}")
        for key, value in PRESET_DEFAULTS[self.preset].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        checks = {
            "timeout_s": self.timeout_s > 0,
            "max_retries": self.max_retries >= 0,
            "backoff_base_s": self.backoff_base_s >= 0,
            "backoff_max_s": self.backoff_max_s >= 0,
            "concurrency": self.concurrency >= 1,
            "max_tokens": self.max_tokens >= 1,
            "retry_temperature": 0 <= self.retry_temperature <= 2,
            "max_question_chars": self.max_question_chars >= 1,
            "rate_limit_wait_s": self.rate_limit_wait_s >= 0,
            "max_rate_limit_waits": self.max_rate_limit_waits >= 0,
            "error_wait_s": self.error_wait_s >= 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise JudgeConfigError(f"JudgeConfig.{key}={getattr(self, key)!r} is out of range")
        if self.base_url is not None and not self.model:
            raise JudgeConfigError("JudgeConfig.model is required when base_url is set")
        if self.preset == "released" and self.base_url is None:
            raise JudgeConfigError("the released judge preset needs an endpoint: set base_url "
                                   "(MINIO3_JUDGE_BASE_URL); it has no rule-only mode")
        if self.preset == "released" and self.use_rules:
            raise JudgeConfigError("JudgeConfig.use_rules cannot be on with preset='released' (every answered row "
                                   "is asked, as in the released code)")

    @property
    def rule_only(self) -> bool:
        return self.base_url is None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "JudgeConfig":
        """Read ``MINIO3_JUDGE_<FIELD>`` (e.g. ``MINIO3_JUDGE_BASE_URL``,
        ``MINIO3_JUDGE_API_KEY``, ``MINIO3_JUDGE_MODEL``, ``MINIO3_JUDGE_TIMEOUT_S``,
        ``MINIO3_JUDGE_MAX_RETRIES``, ``MINIO3_JUDGE_CONCURRENCY``,
        ``MINIO3_JUDGE_CACHE_PATH``, ``MINIO3_JUDGE_PRESET``); keyword ``overrides``
        win over the environment (``preset=None`` is ignored).
        ``MINIO3_JUDGE_TIMEOUT`` and ``MINIO3_JUDGE_RETRIES`` are accepted as aliases.
        """
        env = os.environ if env is None else env
        aliases = {"TIMEOUT": "timeout_s", "RETRIES": "max_retries", "CACHE": "cache_path"}
        values: dict[str, Any] = {}
        by_name = {f.name: f for f in fields(cls)}
        for key, raw in env.items():
            if not key.startswith(ENV_PREFIX):
                continue
            suffix = key[len(ENV_PREFIX):]
            name = aliases.get(suffix, suffix.lower())
            if name not in by_name:
                raise JudgeConfigError(f"unknown judge setting {key} (known: {sorted(by_name)})")
            values[name] = _coerce(key, raw, by_name[name].type)
        values.update({k: v for k, v in overrides.items() if not (k == "preset" and v is None)})
        return cls(**values)

    def key_settings(self) -> dict[str, Any]:
        """Everything that decides this judge's verdicts: every :data:`KEYED` field (the
        preset's values filled in) and ``prompt_version`` (prompt and verdict parser).
        Raises ``RuntimeError`` for a field in neither :data:`KEYED` nor :data:`NOT_KEYED`."""
        from . import prompt, released

        names = [f.name for f in fields(self)]
        undecided = [n for n in names if n not in KEYED and n not in NOT_KEYED]
        if undecided:
            raise RuntimeError(f"JudgeConfig field(s) {', '.join(undecided)} are neither in KEYED nor in NOT_KEYED "
                               "(minio3_ext/judge/config.py): decide whether they change a verdict")
        out: dict[str, Any] = {n: getattr(self, n) for n in names if n in KEYED}
        out["prompt_version"] = released.PROMPT_VERSION if self.preset == "released" else prompt.PROMPT_VERSION
        return out

    def resolved_api_key(self) -> str:
        """The key sent: ``api_key``, else ``$OPENAI_API_KEY``, else ``"EMPTY"``."""
        return self.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"

    def replace(self, **changes: Any) -> "JudgeConfig":
        return replace(self, **changes)


def _coerce(key: str, raw: str, type_name: Any) -> Any:
    text = str(type_name)
    raw = raw.strip()
    try:
        if text.startswith("bool"):
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
    except ValueError:
        raise JudgeConfigError(f"{key}={raw!r} is not a valid {text.split()[0]}") from None
    return raw or None
