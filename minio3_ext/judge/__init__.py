"""LLM-judge reward (SPEC 2): OpenAI-compatible, fault-tolerant, deduplicated, cached,
injection-hardened. Framework-free (standard library; ``openai`` imported lazily).

::

    from minio3_ext.judge import Judge, JudgeConfig, JudgeItem

    judge = Judge(JudgeConfig.from_env())          # MINIO3_JUDGE_BASE_URL / _API_KEY / _MODEL
    verdicts = await judge.score([JudgeItem(question, ground_truth, extracted_answer)])
    # verdict.score: 1.0 / 0.0 / None (unscorable: exclude the sample, never score it 0)

Without ``base_url`` the judge runs in **rule-only mode** (no network): certain rule
decisions, else normalised exact match. See :mod:`minio3_ext.judge.engine` for the
pipeline and failure policy, :mod:`minio3_ext.judge.prompt` for injection hardening.
"""

from .cache import VerdictCache, cache_key
from .config import JudgeConfig, JudgeConfigError
from .engine import SOURCES, Judge, JudgeItem, Verdict
from .prompt import PROMPT_VERSION, build_messages, parse_verdict
from .rules import exact_match, rule_verdict

__all__ = [
    "Judge", "JudgeConfig", "JudgeConfigError", "JudgeItem", "Verdict", "SOURCES", "rule_verdict",
    "exact_match", "parse_verdict", "build_messages", "PROMPT_VERSION", "VerdictCache", "cache_key",
]
