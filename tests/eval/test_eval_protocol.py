"""`minio3 eval --protocol NAME`: presets, explicit flags overriding them, and the
paper-shaped table, against the package's fake OpenAI servers (real HTTP, a subprocess)."""

import json
import os
import subprocess
import sys

import pytest

from eval_vlm_script import ScriptedVLM
from minio3_ext.cli import build_parser
from minio3_ext.commands import eval as eval_command
from minio3_ext.eval.protocol import PAPER_MINIO3, PROTOCOLS, apply_protocol, paper_table
from minio3_ext.judge.released import SYSTEM_PROMPT
from minio3_ext.testing.fake_openai import FakeOpenAIServer

MAIN = "import sys; from minio3_ext.cli import main; sys.exit(main())"

# one item per paper column, plus a looping one: (data source, behaviour)
LAYOUT = [("visual_probe_hard", "solve"), ("visual_probe_medium", "wrong"), ("visual_probe_easy", "solve"),
          ("vstar_bench", "solve"), ("hr_bench_4k", "wrong"), ("hr_bench_8k", "solve"), ("mme_realworld", "solve"),
          ("visual_probe_hard", "loop")]


def _resolved(argv):
    args = build_parser().parse_args(["eval", "--data", "x", "--out", "y", "--base-url", "u", "--model", "m", *argv])
    apply_protocol(args, eval_command._explicit_flags(args))
    return args


def test_presets_and_explicit_flags_override():
    released = _resolved(["--protocol", "released"])
    assert (released.budgets, released.max_images, released.k, released.temperature, released.judge_preset,
            released.preset) == ((12,), 12, 32, 1.0, "released", "released")
    assert (released.top_p, released.top_k, released.repetition_penalty, released.min_p, released.image_format,
            released.max_context_tokens, released.token_count, released.judge_failures) == (
        1.0, -1, 1.0, 0.0, "png", 30768, "exact", "zero")
    config = eval_command.episode_config(released, max(released.budgets))
    assert (config.max_turns, config.max_images, config.dialect.preset) == (12, 12, "released")
    curve = _resolved(["--protocol", "paper-curve", "--k", "4", "--temperature", "0.7"])
    assert (curve.budgets, curve.max_images, curve.k, curve.temperature) == ((4, 8, 16, 32), 33, 4, 0.7)
    # a flag given with its default value is still explicit
    assert _resolved(["--protocol", "released", "--k", "1", "--max-images", "33"]).k == 1
    plain = _resolved([])  # no protocol: the plain defaults
    assert (plain.budgets, plain.k, plain.max_images, plain.judge_preset, plain.preset) == (
        (4, 8, 16, 32), 1, 33, None, "strict")
    assert _resolved(["--protocol", "released", "--preset", "strict"]).preset == "strict"
    assert set(eval_command.PROTOCOL_DESTS) >= {d for p in PROTOCOLS.values() for d in p.settings}
    with pytest.raises(ValueError, match="unknown --protocol"):
        _resolved(["--protocol", "paper"])


def _released_judge(request):
    """The released judge's request → Score 1 iff the prediction equals the ground truth."""
    (part,) = request["messages"][1]["content"]
    text = part["text"]
    truth = text.split("2. **Ground Truth Answer**: ", 1)[1].split("\n", 1)[0]
    prediction = text.split("3. **Model Predicted Answer**: ", 1)[1].split("\n\nYour task", 1)[0]
    return "Score: 1" if truth.strip() == prediction.strip() else "Score: 0"


@pytest.mark.slow  # a full k=2 eval through the CLI with a judge (~10 s); the presets are checked fast above
def test_eval_protocol_released_prints_the_paper_shaped_table(synth_items, tmp_path):
    base_rows, _ = synth_items
    rows, behaviours = [], {}
    for row, (source, behaviour) in zip(base_rows + base_rows, LAYOUT):
        item = {**row, "doc_id": f"{row['doc_id']}-{source}-{behaviour}", "data_source": source}
        item["problem"] = item["problem"].replace(f"[{row['doc_id']}]", f"[{item['doc_id']}]")
        rows.append(item)
        behaviours[item["doc_id"]] = behaviour
    items_path = tmp_path / "items.jsonl"
    items_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run.jsonl"
    with FakeOpenAIServer(ScriptedVLM({r["doc_id"]: r for r in rows}, behaviours), models=["policy"]) as policy, \
            FakeOpenAIServer(_released_judge, models=["judge"]) as judge:
        # the items name the synthetic images by absolute path: that folder is their image root
        cmd = [sys.executable, "-c", MAIN, "eval", "--protocol", "released", "--k", "2", "--data", str(items_path),
               "--image-root", str(synth_items[1].parent),
               "--out", str(out), "--base-url", policy.base_url, "--model", "policy",
               "--judge-base-url", judge.base_url, "--judge-model", "judge", "--no-progress", "--concurrency", "4"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIO3_JUDGE_")}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        policy_temps = {r["temperature"] for r in policy.requests}
        judge_requests = list(judge.requests)
    assert policy_temps == {1.0}
    # the released judge: its system prompt; exact matches asked too (no rule path), repeats from the cache
    assert all(r["messages"][0]["content"][0]["text"] == SYSTEM_PROMPT for r in judge_requests)
    answered = sum(b != "loop" for b in behaviours.values())
    assert answered <= len(judge_requests) <= 2 * answered
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["budgets"] == [12] and summary["run"]["protocol"] == "released" and summary["run"]["k"] == 2
    records = [json.loads(line) for line in open(out)]
    loop = [r for r in records if behaviours[r["id"]] == "loop"]
    # 12 turns: still zooming at the last allowed turn (masked in training; 0 in Avg@K, as released)
    assert {r["termination_reason"] for r in loop} == {"turn_limit"} and {r["num_turns"] for r in loop} == {12}
    paper = out.with_suffix(".paper.md").read_text()
    lines = paper.splitlines()
    assert lines[0] == "| model | VP hard | VP medium | VP easy | V* | HR-4K | HR-8K | MME-RW |"
    assert lines[2] == "| this run, 12 turns (Avg@2) | 50.0 | 0.0 | 100.0 | 100.0 | 0.0 | 100.0 | 100.0 |"
    assert lines[3] == "| Mini-o3 (paper) | 48.0 | 50.4 | 67.0 | 88.2 | 77.5 | 73.3 | 65.5 |"
    assert lines[4] == "| difference (12 turns − paper) | +2.0 | -50.4 | +33.0 | +11.8 | -77.5 | +26.7 | +34.5 |"
    assert paper.strip() in proc.stdout  # printed beside the package's own table
    assert "| visual_probe | hard | 12 |" in proc.stdout


def test_paper_table_per_budget_and_missing_columns():
    rows = []
    for budget, acc in ((4, 0.25), (32, 0.5)):
        rows.append({"benchmark": "visual_probe", "difficulty": "hard", "budget": budget, "accuracy": acc, "k": 32})
        rows.append({"benchmark": "visual_probe", "difficulty": "all", "budget": budget, "accuracy": acc, "k": 32})
        rows.append({"benchmark": "vstar_bench", "difficulty": "direct_attributes", "budget": budget,
                     "accuracy": 0.9, "k": 32})
        rows.append({"benchmark": "vstar_bench", "difficulty": "relative_position", "budget": budget,
                     "accuracy": 0.7, "k": 32})
        rows.append({"benchmark": "vstar_bench", "difficulty": "all", "budget": budget, "accuracy": 0.8, "k": 32})
    table = paper_table({"budgets": [4, 32], "rows": rows}).splitlines()
    assert table[2] == "| this run, 4 turns (Avg@32) | 25.0 | – | – | 80.0 | – | – | – |"
    assert table[3] == "| this run, 32 turns (Avg@32) | 50.0 | – | – | 80.0 | – | – | – |"
    assert table[5] == f"| difference (32 turns − paper) | {50 - PAPER_MINIO3['VP hard']:+.1f} | – | – | -8.2 | – | – | – |"
    assert paper_table({"budgets": [4], "rows": [{"benchmark": "synthetic", "difficulty": "all", "budget": 4,
                                                   "accuracy": 1.0, "k": 1}]}) is None
