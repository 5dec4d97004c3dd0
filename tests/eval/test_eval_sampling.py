"""Issue 18: `minio3 eval` states its whole sampling in every request, `--protocol released`
reproduces the released evaluation (PNG, exact 30,768-token context, judge failures as 0),
and the traps a new user falls into are named — against the package's fake OpenAI
servers (real HTTP, `minio3 eval` in a subprocess) and the policy's own HTTP client."""

import asyncio
import json
import os
import re
import subprocess
import sys

import pytest

from eval_vlm_script import ScriptedVLM, exact_judge, target_box, zoom
from minio3_ext.eval.openai_policy import SAMPLING_DEFAULTS, OpenAIPolicy
from minio3_ext.eval.protocol import RULE_JUDGE_NOTE, apply_protocol, paper_table
from minio3_ext.testing.fake_openai import Completion, FakeOpenAIServer, Fault

MAIN = "import sys; from minio3_ext.cli import main; sys.exit(main())"  # what the `minio3` script runs
SAMPLING = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "min_p": 0.0}


def _eval(items, out, policy_url, *extra, judge_url=None, env=None):
    # the synthetic images live beside the synth fixture's items, not beside these item files
    cmd = [sys.executable, "-c", MAIN, "eval", "--data", str(items), "--out", str(out), "--base-url", policy_url,
           "--model", "policy", "--no-progress", "--budgets", "4", "--allow-outside-root", *extra]
    if judge_url:
        cmd += ["--judge-base-url", judge_url, "--judge-model", "judge"]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MINIO3_JUDGE_")}, **(env or {})}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _items(tmp_path, rows, sources=None):
    rows = [{**r, "data_source": sources[i]} if sources else r for i, r in enumerate(rows)]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_released_engine_sampling_is_the_default():
    """The neutral values of released ``vllm_async_engine.py`` ~311-327 (top_k -1, top_p 1 over
    generation_config; SamplingParams' repetition_penalty 1.0 and min_p 0)."""
    assert SAMPLING_DEFAULTS == SAMPLING


@pytest.mark.slow  # several `minio3 eval` processes end to end
def test_every_request_states_its_whole_sampling_and_the_run_records_it(synth_items, tmp_path):
    rows, items = synth_items
    rows = rows[:2]
    items = _items(tmp_path, rows)
    behaviours = {r["doc_id"]: "solve" for r in rows}
    out = tmp_path / "run.jsonl"
    with FakeOpenAIServer(ScriptedVLM({r["doc_id"]: r for r in rows}, behaviours), models=["policy"]) as policy, \
            FakeOpenAIServer(exact_judge, models=["judge"]) as judge:
        proc = _eval(items, out, policy.base_url, judge_url=judge.base_url)
        assert proc.returncode == 0, proc.stderr
        bodies = list(policy.requests)
        # another sampling is another run: the resume key names the flag
        other = _eval(items, out, policy.base_url, "--top-k", "20", judge_url=judge.base_url)
        tuned = _eval(items, tmp_path / "tuned.jsonl", policy.base_url, "--top-k", "20", "--top-p", "0.9",
                      "--repetition-penalty", "1.05", "--min-p", "0.05", "--temperature", "0.7",
                      judge_url=judge.base_url)
        assert tuned.returncode == 0, tuned.stderr
        tuned_bodies = policy.requests[len(bodies):]
    assert bodies and all({k: b.get(k) for k in SAMPLING} == SAMPLING for b in bodies)
    assert all({k: b.get(k) for k in SAMPLING} == {"temperature": 0.7, "top_p": 0.9, "top_k": 20,
                                                    "repetition_penalty": 1.05, "min_p": 0.05} for b in tuned_bodies)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert all({k: r["settings"]["--" + k.replace("_", "-")] for k in SAMPLING} == SAMPLING for r in records)
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["run"]["sampling"] == SAMPLING
    assert other.returncode == 2 and "--top-k was -1 in the earlier run, 20 now" in other.stderr
    # the end of the output says where everything went
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("outputs: ") and str(out) in last and str(out.with_suffix(".summary.json")) in last
    assert str(out.with_suffix(".png")) in last and str(out.with_suffix(".judge.sqlite")) in last


def test_help_shows_each_sampling_default():
    proc = subprocess.run([sys.executable, "-c", MAIN, "eval", "--help"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "400"})
    assert proc.returncode == 0
    blocks = {}  # option → its help text
    for block in re.split(r"\n(?=  --)", proc.stdout):
        if block.startswith("  --"):
            blocks[block.split()[0]] = " ".join(block.split())
    for flag, value in (("--top-p", "1.0"), ("--top-k", "-1"), ("--repetition-penalty", "1.0"), ("--min-p", "0.0"),
                        ("--temperature", "1.0"), ("--judge-failures", "excluded"), ("--token-count", "estimate")):
        assert blocks[flag].endswith(f"(default: {value})"), blocks[flag]


def test_extra_body_cannot_set_the_sampling(synth_items, tmp_path):
    _, items = synth_items
    proc = _eval(items, tmp_path / "x.jsonl", "http://127.0.0.1:9/v1", "--extra-body", '{"top_k": 1}')
    assert proc.returncode == 2 and "--extra-body sets top_k: use --top-k instead" in proc.stderr


def _transformers_like(request):
    """What ``transformers serve`` does with fields outside its schema: HTTP 422 naming them."""
    unexpected = {k for k in ("top_k", "repetition_penalty", "min_p") if k in request}
    if unexpected:
        return Fault.status(422, message=f"Unexpected fields in the request: {unexpected}")
    return "<answer>a</answer>"


def test_a_server_that_rejects_the_extra_fields_gets_them_in_its_generation_config():
    message = [{"role": "user", "content": [{"type": "text", "text": "q"}]}]

    async def go(url):
        policy = OpenAIPolicy(url, "policy", top_k=-1, repetition_penalty=1.1, temperature=0.8,
                              extra_body={"generation_config": json.dumps({"max_length": 99})})
        # two first requests in flight together: both are rejected, both retried in the server's form
        replies = await asyncio.gather(policy(message), policy(message))
        replies.append(await policy(message))
        await policy.client.close()
        return policy, replies

    with FakeOpenAIServer(_transformers_like, models=["policy"]) as server:
        policy, replies = asyncio.run(go(server.base_url))
        bodies = list(server.requests)
    assert replies == ["<answer>a</answer>"] * 3 and policy.sampling_in_generation_config
    taken = [b for b in bodies if "generation_config" in b and "top_k" not in b]
    assert len(taken) == 3 and len(bodies) - len(taken) in (1, 2)  # the rejected ones, once per request at most
    for body in taken:
        assert not {"top_k", "repetition_penalty", "min_p"} & set(body)
        assert (body["temperature"], body["top_p"]) == (0.8, 1.0)
        config = json.loads(body["generation_config"])
        assert config == {"do_sample": True, "temperature": 0.8, "top_p": 1.0, "top_k": 0,  # HF: 0 = no top-k
                          "repetition_penalty": 1.1, "max_new_tokens": 8192, "max_length": 99}


def test_base_url_without_v1_is_named_with_its_fix(synth_items, tmp_path):
    _, items = synth_items
    with FakeOpenAIServer(lambda r: "<answer>a</answer>", models=["policy"]) as server:
        root = server.base_url[: -len("/v1")]
        proc = _eval(items, tmp_path / "x.jsonl", root)
        assert server.requests == []
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert f"pass --base-url {root}/v1" in proc.stderr and "rerun" not in proc.stderr


def test_a_404_on_a_request_names_the_missing_v1():
    async def go(url):
        policy = OpenAIPolicy(url, "policy")
        try:
            await policy([{"role": "user", "content": [{"type": "text", "text": "q"}]}])
        finally:
            await policy.client.close()

    with FakeOpenAIServer(lambda r: "x", models=["policy"]) as server:
        root = server.base_url[: -len("/v1")]
        with pytest.raises(Exception, match=f"pass --base-url {root}/v1"):
            asyncio.run(go(root))


def test_a_rule_only_judge_says_so_beside_the_difference_row(synth_items, tmp_path):
    rows = [{"benchmark": "vstar_bench", "difficulty": "all", "budget": 4, "accuracy": 0.5, "k": 1,
             "accuracy_failures_as_0": 0.5}]
    row = next(line for line in paper_table({"budgets": [4], "rows": rows}, rule_judge=True).splitlines()
               if line.startswith("| difference"))
    assert RULE_JUDGE_NOTE in row
    base_rows, _ = synth_items
    base_rows = base_rows[:1]
    items = _items(tmp_path, base_rows, ["vstar_bench"])
    with FakeOpenAIServer(ScriptedVLM({r["doc_id"]: r for r in base_rows}, {base_rows[0]["doc_id"]: "solve"}),
                          models=["policy"]) as policy:
        proc = _eval(items, tmp_path / "rules.jsonl", policy.base_url)  # no --judge-*: the rule-only judge
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| difference"))
    assert RULE_JUDGE_NOTE in row and "Warning: rule-only judge" in proc.stdout


class _ReleasedVLM(ScriptedVLM):
    """``big``: the server counts 30,800 tokens after the first turn (over 30,768); others as scripted."""

    def __call__(self, request):
        reply = super().__call__(request)
        item = next(i for i in self.rows if f"[{i}]" in json.dumps(request["messages"][1]))
        if self.behaviours[item] == "loop":
            return Completion(zoom(target_box(self.rows[item], 3.0)), usage={"prompt_tokens": 30_500,
                                                                              "completion_tokens": 300})
        return reply


def _flaky_released_judge(request):
    """The released judge's request: a reply without any verdict for ``wrong``'s answer ("#")."""
    text = request["messages"][1]["content"][0]["text"]
    truth = text.split("2. **Ground Truth Answer**: ", 1)[1].split("\n", 1)[0]
    prediction = text.split("3. **Model Predicted Answer**: ", 1)[1].split("\n\nYour task", 1)[0]
    if prediction.strip() == "#":
        return "I cannot decide."
    return "Score: 1" if truth.strip() == prediction.strip() else "Score: 0"


@pytest.mark.slow  # several `minio3 eval` processes end to end
def test_protocol_released_png_exact_context_and_judge_failures_as_0(synth_items, tmp_path):
    base_rows, _ = synth_items
    base_rows = base_rows[:3]
    behaviours = dict(zip((r["doc_id"] for r in base_rows), ("solve", "wrong", "loop")))
    items = _items(tmp_path, base_rows, ["visual_probe_hard"] * 3)
    out = tmp_path / "released.jsonl"
    with FakeOpenAIServer(_ReleasedVLM({r["doc_id"]: r for r in base_rows}, behaviours), models=["policy"]) as policy, \
            FakeOpenAIServer(_flaky_released_judge, models=["judge"]) as judge:
        proc = _eval(items, out, policy.base_url, "--protocol", "released", "--k", "1", judge_url=judge.base_url,
                     env={"MINIO3_JUDGE_MAX_RETRIES": "0"})
        bodies = list(policy.requests)
    assert proc.returncode == 0, proc.stderr
    assert all({k: b.get(k) for k in SAMPLING} == SAMPLING for b in bodies)
    urls = [p["image_url"]["url"] for b in bodies for m in b["messages"] if isinstance(m["content"], list)
            for p in m["content"] if p["type"] == "image_url"]
    assert urls and all(u.startswith("data:image/png;base64,") for u in urls)  # lossless
    records = {behaviours[r["id"]]: r for r in map(json.loads, out.read_text().splitlines())}
    # the server's count after turn 1 is 30,800 >= 30,768: the released "exceed", not 4 turns of zooming
    assert (records["loop"]["termination_reason"], records["loop"]["num_turns"]) == ("context_limit", 1)
    assert records["loop"]["settings"]["--max-context-tokens"] == 30768
    assert records["loop"]["settings"]["--token-count"] == "exact"
    assert records["wrong"]["verdict"] is None  # the judge failed: unscorable in the record
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    (row,) = [r for r in summary["rows"] if r["difficulty"] == "hard"]
    # excluded: (1 + 0) / 2 items; as 0 (released): (1 + 0 + 0) / 3
    assert row["accuracy"] == pytest.approx(0.5) and row["accuracy_failures_as_0"] == pytest.approx(1 / 3)
    assert summary["run"]["judge_failures"] == "zero" and summary["run"]["context_count"].startswith("exact")
    assert "| this run, 4 turns (Avg@1) | 33.3 |" in proc.stdout  # the paper table: failures as 0
    assert "| visual_probe | hard | 4 | 50.0 | 2 | 1 | 1 | 33.3 |" in proc.stdout  # both numbers reported
    assert "1 sample(s) unscorable" in proc.stdout


def test_exact_count_takes_a_local_tokenizer_else_the_servers_usage(tiny_qwen_dir, tmp_path):
    from transformers import AutoTokenizer

    from minio3_ext.cli import build_parser
    from minio3_ext.commands import eval as eval_command
    from minio3_ext.commands._args import UserError

    def resolved(*argv):
        args = build_parser().parse_args(["eval", "--data", "x", "--out", "y", "--base-url", "u", "--model", "m", *argv])
        apply_protocol(args, eval_command._explicit_flags(args))
        return args

    counter, how = eval_command.token_counter(resolved("--protocol", "released", "--tokenizer", str(tiny_qwen_dir)))
    text = "<|im_start|>user\nHere is the zoomed image observation_1.<|im_end|>"
    assert counter(text) == len(AutoTokenizer.from_pretrained(tiny_qwen_dir).encode(text, add_special_tokens=False))
    assert how == f"exact: the server's usage and the tokenizer of {tiny_qwen_dir}"
    _, how = eval_command.token_counter(resolved("--protocol", "released"))  # --model "m" loads nowhere
    assert how.startswith("exact: the server's usage")
    with pytest.raises(UserError, match="--tokenizer"):
        eval_command.token_counter(resolved("--token-count", "exact", "--tokenizer", str(tmp_path / "none")))
    assert eval_command.token_counter(resolved())[1] == "estimate"
