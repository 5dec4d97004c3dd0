"""Helpers shared by the judge tests (imported as ``judge_helpers``)."""

from __future__ import annotations

from minio3_ext.judge import JudgeConfig
from minio3_ext.judge.prompt import parse_data_block


def fast_config(base_url: str | None, **overrides) -> JudgeConfig:
    # A generous timeout: only the timeout tests shorten it, so a loaded CI box
    # does not turn slow replies into spurious retries.
    values = dict(base_url=base_url, model="fake-judge", timeout_s=10.0, max_retries=2,
                  backoff_base_s=0.005, backoff_max_s=0.05, concurrency=8)
    values.update(overrides)
    return JudgeConfig(**values)


def request_data(request: dict) -> dict:
    """The (question, ground_truth, prediction) JSON a judge request carried."""
    return parse_data_block(request["messages"][-1]["content"])[1]


def oracle(accept):
    """A handler that answers ``Score: 1`` when ``accept(data)`` else ``Score: 0``."""
    def handler(request: dict) -> str:
        return "Score: 1" if accept(request_data(request)) else "Score: 0"
    return handler
