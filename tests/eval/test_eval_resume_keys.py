"""Issue 21 item 1: resume is keyed on content (question, ground truth, image bytes) and on
every setting: sampling, episode and every judge setting (flags or MINIO3_JUDGE_* alike).
Before, resume matched records by (id, sample) only, and judge settings other than the model
were not part of the key. Real HTTP servers, the CLI in process."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

from eval_vlm_script import ScriptedVLM, exact_judge
from minio3_ext.cli import build_parser, main
from minio3_ext.commands.eval import KEYED, NOT_KEYED, _explicit_flags, run_settings
from minio3_ext.testing.fake_openai import FakeOpenAIServer


@pytest.fixture
def dataset(synth_items, tmp_path):
    """Two items with their own image copies (relative paths) in ``tmp_path/data``."""
    rows, _ = synth_items
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    out_rows = []
    for row in rows[:2]:
        name = f"img/{row['doc_id']}.jpg"
        shutil.copy(row["images"][0], data / name)
        out_rows.append({**row, "images": [name]})
    return data, out_rows


def _write(data, rows):
    path = data / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _eval(items, out, policy, judge, *extra):
    return main(["eval", "--input", str(items), "--out", str(out), "--base-url", policy.base_url, "--model", "policy",
                 "--judge-base-url", judge.base_url, "--judge-model", "judge", "--no-progress", "--budgets", "4",
                 *extra])


@pytest.fixture
def servers(dataset):
    _, rows = dataset
    vlm = ScriptedVLM({r["doc_id"]: r for r in rows}, {r["doc_id"]: "solve" for r in rows})
    with FakeOpenAIServer(vlm, models=["policy"]) as policy, FakeOpenAIServer(exact_judge, models=["judge"]) as judge, \
            FakeOpenAIServer(exact_judge, models=["judge"]) as other_judge:
        yield policy, judge, other_judge


@pytest.fixture(autouse=True)
def _judge_env(monkeypatch):
    for key in ("MINIO3_JUDGE_PRESET", "MINIO3_JUDGE_BASE_URL", "MINIO3_JUDGE_MODEL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MINIO3_JUDGE_USE_RULES", "0")
    monkeypatch.setenv("MINIO3_JUDGE_MAX_RETRIES", "0")


def _changed_question(data, rows):
    return _write(data, [{**rows[0], "problem": rows[0]["problem"].replace("What", "Which")}, rows[1]])


def _changed_truth(data, rows):
    return _write(data, [{**rows[0], "solution": "Z"}, rows[1]])


def _changed_image(data, rows):
    from PIL import Image

    path = data / rows[0]["images"][0]
    with Image.open(path) as im:
        im.convert("RGB").rotate(180).save(path, quality=90)
    return _write(data, rows)


@pytest.mark.parametrize("change,named", [
    (_changed_question, "was made on another question"),
    (_changed_truth, "was made on another ground truth: 'H' then, 'Z' now"),
    (_changed_image, "was made on another image (sha256 of its bytes)"),
])
def test_changed_items_with_the_same_ids_are_not_resumed(dataset, servers, tmp_path, capsys, change, named):
    data, rows = dataset
    policy, judge, _ = servers
    out = tmp_path / "run.jsonl"
    assert _eval(_write(data, rows), out, policy, judge) == 0
    before, asked = out.read_bytes(), len(judge.requests)
    capsys.readouterr()
    status = _eval(change(data, rows), out, policy, judge)
    err = capsys.readouterr().err
    assert status == 2 and named in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert out.read_bytes() == before and len(judge.requests) == asked  # no old verdict reused, nothing mixed


def test_another_judge_preset_or_url_is_not_resumed(dataset, servers, tmp_path, capsys, monkeypatch):
    data, rows = dataset
    policy, judge, other = servers
    items, out = _write(data, rows), tmp_path / "run.jsonl"
    assert _eval(items, out, policy, judge) == 0
    before = out.read_bytes()
    capsys.readouterr()
    # the same judge model name at another URL
    assert _eval(items, out, policy, other) == 2
    err = capsys.readouterr().err
    assert f"judge.base_url was '{judge.base_url}' in the earlier run, '{other.base_url}' now" in err, err
    # another preset, set only through the environment
    monkeypatch.setenv("MINIO3_JUDGE_PRESET", "released")
    assert _eval(items, out, policy, judge) == 2
    err = capsys.readouterr().err
    assert "judge.preset was 'hardened' in the earlier run, 'released' now" in err, err
    monkeypatch.delenv("MINIO3_JUDGE_PRESET")
    # any other judge setting from the environment
    monkeypatch.setenv("MINIO3_JUDGE_MAX_TOKENS", "32")
    assert _eval(items, out, policy, judge) == 2
    assert "judge.max_tokens was 64" in capsys.readouterr().err
    monkeypatch.delenv("MINIO3_JUDGE_MAX_TOKENS")
    assert other.requests == [] and out.read_bytes() == before
    # unchanged: resumes, nothing rerun or rescored
    n = len(policy.requests)
    assert _eval(items, out, policy, judge) == 0
    assert "0 new, 2 from earlier runs" in capsys.readouterr().out and len(policy.requests) == n
    record = json.loads(out.read_text().splitlines()[0])
    assert len(record["image_sha256"]) == 64 and record["settings"]["judge.model"] == "judge"
    assert "judge.api_key" not in record["settings"] and "--api-key" not in record["settings"]


def _parser_args(command):
    argv = [command, "--input", "x", "--out", "o", "--base-url", "u", "--model", "m"]
    args = build_parser().parse_args(argv)
    if command == "eval":
        _explicit_flags(args)  # what `minio3 eval` does first: unwrap the defaults a --protocol may fill
    return args


@pytest.mark.parametrize("command", ["eval", "coldstart"])
def test_every_flag_is_keyed_or_has_a_reason_not_to_be(command):
    args = _parser_args(command)
    dests = set(vars(args))
    assert dests <= set(KEYED) | set(NOT_KEYED), dests - set(KEYED) - set(NOT_KEYED)
    assert not set(KEYED) & set(NOT_KEYED) and all(r.strip() for r in NOT_KEYED.values())
    settings = run_settings(args)
    assert {"--temperature", "--top-p", "--top-k", "--repetition-penalty", "--min-p", "--model", "--base-url",
            "--max-tokens"} <= set(settings)


def test_no_stale_entries():
    dests = set(vars(_parser_args("eval"))) | set(vars(_parser_args("coldstart")))
    assert set(KEYED) | set(NOT_KEYED) == dests


def test_a_flag_added_without_deciding_fails():
    args = _parser_args("eval")
    grown = argparse.Namespace(**vars(args), seed=1)
    with pytest.raises(RuntimeError, match="--seed are neither in KEYED nor in NOT_KEYED"):
        run_settings(grown)
