"""Evaluation, cold-start synthesis and reports, on top of the framework-free core.

- :mod:`.records` — the evaluation item and trajectory record (JSON) formats;
- :mod:`.runner` — ``run_episode(policy, row, config, bank)``, budget prefixes, scoring;
- :mod:`.metrics` — Avg@K and the benchmark × difficulty × budget summary;
- :mod:`.report` — trajectory HTML viewer, accuracy-vs-budget plot, summary table;
- :mod:`.openai_policy` — a policy backed by an OpenAI-compatible chat endpoint;
- :mod:`.evaluate` — resumable Avg@K × budget runs (``minio3 eval``);
- :mod:`.coldstart` — few-shot exemplars and cold-start synthesis (``minio3 coldstart``);
- :mod:`.sft` — trajectories → multi-turn SFT data for verl and TRL.
"""

from .metrics import DEFAULT_BUDGETS, avg_at_k, summarize
from .records import as_item, item_key
from .report import format_summary_table, plot_accuracy_vs_budget, write_trajectory_html
from .runner import Policy, at_budget, run_episode, score_trajectory

__all__ = [
    "DEFAULT_BUDGETS", "avg_at_k", "summarize", "as_item", "item_key", "format_summary_table",
    "plot_accuracy_vs_budget", "write_trajectory_html", "Policy", "at_budget",
    "run_episode", "score_trajectory",
]
