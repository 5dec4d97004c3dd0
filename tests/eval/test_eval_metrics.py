"""Avg@K and the per-budget summary on hand-built trajectories."""

import pytest

from minio3_ext.eval.metrics import avg_at_k, summarize
from minio3_ext.eval.report import format_summary_table


def _traj(item, sample, kinds, answer=None, verdict=None, reason="answered", budget=8, source="visual_probe_hard"):
    turns = [{"turn": i + 1, "assistant": "", "action": {"turn": i + 1, "kind": k, "source": None, "box": None,
                                                        "box_in_original": None, "error": None},
              "observation_index": None, "observation_image": None, "observation_text": None}
             for i, k in enumerate(kinds)]
    bench, level = source.rsplit("_", 1)
    return {"id": item, "sample": sample, "budget": budget, "turns": turns, "num_turns": len(turns), "answer": answer,
            "verdict": verdict, "scored": True, "termination_reason": reason, "is_overturn": reason == "turn_limit",
            "question": "q", "ground_truth": "g", "data_source": source, "benchmark": bench, "difficulty": level}


def test_avg_at_k_means_items_then_samples_and_skips_unscored():
    got = avg_at_k({"a": [1, 1, 1, 0], "b": [0, 0], "c": [None, 1]})
    assert got["accuracy"] == pytest.approx((0.75 + 0.0 + 1.0) / 3)
    assert (got["items"], got["samples"], got["unscored"]) == (3, 7, 1)
    assert avg_at_k({"a": [None]})["accuracy"] is None


def test_summary_derives_each_budget_from_the_prefix():
    trajs = [
        _traj("a", 0, ["zoom", "answer"], "x", 1),                  # correct at budget >= 2
        _traj("a", 1, ["zoom"] * 3 + ["answer"], "x", 1),           # correct at budget >= 4
        _traj("b", 0, ["zoom"] * 8, reason="turn_limit", verdict=0),  # loops
        _traj("b", 1, ["answer"], "y", 0),                           # wrong at once
    ]
    summary = summarize(trajs, budgets=(2, 4, 8))
    rows = {r["budget"]: r for r in summary["rows"]}
    assert rows[2]["accuracy"] == pytest.approx((0.5 + 0.0) / 2)
    assert rows[4]["accuracy"] == pytest.approx((1.0 + 0.0) / 2)
    assert rows[8]["accuracy"] == rows[4]["accuracy"]
    assert rows[2]["reasons"] == {"answered": 0.5, "turn_limit": 0.5}
    assert rows[8]["reasons"] == {"answered": 0.75, "turn_limit": 0.25}
    assert rows[2]["mean_turns"] == pytest.approx((2 + 2 + 2 + 1) / 4)
    assert rows[8]["k"] == 2 and rows[8]["items"] == 2
    table = format_summary_table(summary)
    assert "| visual_probe | hard | 4 | 50.0 | 2 | 2 | 0 |" in table


def test_summary_adds_an_all_row_across_difficulties():
    trajs = [_traj("e", 0, ["answer"], "x", 1, source="visual_probe_easy"),
             _traj("h", 0, ["answer"], "x", 0, source="visual_probe_hard"),
             _traj("h2", 0, ["answer"], "x", 0, source="visual_probe_hard")]
    rows = [(r["difficulty"], r["accuracy"]) for r in summarize(trajs, budgets=(4,))["rows"]]
    assert rows == [("all", pytest.approx(1 / 3)), ("easy", 1.0), ("hard", 0.0)]
