"""LLM-judge reward: OpenAI-compatible, fault-tolerant, deduplicated, cached,
injection-hardened. Framework-free (standard library; ``openai`` imported lazily).

Needs the ``openai`` package for LLM calls (``pip install minio3-ext[judge]``)::

    from minio3_ext.judge import Judge, JudgeConfig, JudgeItem

    judge = Judge(JudgeConfig.from_env())          # MINIO3_JUDGE_BASE_URL / _API_KEY / _MODEL
    items = [JudgeItem.from_completion(question, ground_truth, trajectory_text)]  # or JudgeItem(q, gt, answer)
    verdicts = await judge.score(items)            # or judge.score_sync(items)
    # verdict.score: 1.0 / 0.0 / None (unscorable: exclude the sample, never score it 0)
    # verdict.source: "rule" | "llm" | "cache" | "no_answer" | "unscorable"
    judge.metrics()  # calls, cache_hits, dedupe_saves, retries, unscorable, latency_mean_s, errors_* ...

Validate an endpoint first: ``minio3 judge check --base-url URL --model NAME``.

Presets: ``JudgeConfig(preset="hardened")`` (default) or ``preset="released"`` (the
Mini-o3 authors' judge prompts and schedule, :mod:`minio3_ext.judge.released`).

Without ``base_url`` the (hardened) judge runs in **rule-only mode** (no network): certain rule
decisions, else normalised exact match. See :mod:`minio3_ext.judge.engine` for the
pipeline and failure policy, :mod:`minio3_ext.judge.prompt` for injection hardening.
"""

from .cache import VerdictCache, cache_key
from .config import PRESETS, JudgeConfig, JudgeConfigError
from .engine import SOURCES, Judge, JudgeItem, Verdict
from .prompt import PROMPT_VERSION, build_messages, parse_verdict
from .rules import exact_match, rule_verdict

__all__ = [
    "Judge", "JudgeConfig", "JudgeConfigError", "JudgeItem", "Verdict", "SOURCES", "rule_verdict",
    "exact_match", "parse_verdict", "build_messages", "PROMPT_VERSION", "VerdictCache", "cache_key",
    "PRESETS",
]
