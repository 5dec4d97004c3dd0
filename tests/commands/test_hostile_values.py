"""Issue 21 item 9: values that are not answers, exact numbers, and a full disk."""

from __future__ import annotations

import errno
import json

import pytest

import minio3_ext.eval.evaluate as evaluate_module
from minio3_ext.cli import main
from minio3_ext.judge.rules import rule_verdict
from minio3_ext.testing.fake_openai import FakeOpenAIServer

_ROW = {"doc_id": "r7", "problem": "<image>\nWhat is written?", "images": ["images/synth-00000.jpg"],
        "data_source": "synthetic_visual_search"}


def _data(synthetic_jsonl, tmp_path, truth_json: str):
    """A data file beside the synthetic images whose one row has ``solution`` = the raw JSON text."""
    path = synthetic_jsonl.parent / f"gt_{abs(hash(truth_json))}.jsonl"
    path.write_text(json.dumps(_ROW)[:-1] + f', "solution": {truth_json}}}\n')
    return path


@pytest.mark.parametrize("truth", ["NaN", "Infinity", "-Infinity", '["9"]', '{"answer": "9"}'])
def test_eval_refuses_a_ground_truth_that_is_not_text_or_a_number(synthetic_jsonl, tmp_path, capsys, truth):
    data = _data(synthetic_jsonl, tmp_path, truth)
    status = main(["eval", "--data", str(data), "--out", str(tmp_path / "o.jsonl"), "--base-url",
                   "http://127.0.0.1:9/v1", "--model", "m", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "row r7" in err and "ground truth must be text or a finite number" in err, err
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("truth", ["Infinity", '["9"]', '{"a": 1}'])  # NaN: "missing solution" (pandas' empty cell)
def test_convert_reports_the_row_with_a_bad_ground_truth(synthetic_jsonl, tmp_path, capsys, truth):
    data = _data(synthetic_jsonl, tmp_path, truth)
    status = main(["data", "convert", "visual_probe", "--input", str(data), "--out", str(tmp_path / "c"), "--strict"])
    err = capsys.readouterr().err
    assert status != 0 and "Traceback" not in err, err
    assert "r7" in err and "ground truth must be text or a finite number" in err, err


def test_grpo_rows_refuse_a_bad_ground_truth():
    from minio3_ext.trl.data import grpo_rows

    with pytest.raises(ValueError, match=r"row 0 \('r7'\).*finite number"):
        grpo_rows([{**_ROW, "solution": float("nan")}])


def test_numbers_are_compared_exactly():
    assert rule_verdict("How many?", "12345678901234567", "12345678901234568") == 0.0
    assert rule_verdict("How many?", "12345678901234567", "12345678901234567.0") == 1.0
    assert rule_verdict("How many?", "0.1", "0.10000000000000001") == 0.0
    assert rule_verdict("How many?", "10", "1,0") is None  # not a number: the LLM decides
    assert rule_verdict("How many?", "1000", "1,000") == 1.0
    assert rule_verdict("How many?", "1,000", "1000.") == 1.0
    assert rule_verdict("How many?", "3", "-3") == 0.0


class _FullDisk:
    """The output file on a disk that fills after ``room`` records (what /dev/full does at once)."""

    def __init__(self, f, room: int):
        self._f, self._room = f, room

    def write(self, text):
        if self._room == 0:
            self._f.write(text[: len(text) // 2])  # a partial line, as a real full disk leaves it
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= 1
        return self._f.write(text)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def test_a_full_disk_is_one_line_with_the_resume_hint(synthetic_jsonl, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run.jsonl"
    real_open = open

    def opener(path, mode="r", *a, **kw):
        f = real_open(path, mode, *a, **kw)
        return _FullDisk(f, room=2) if str(path) == str(out) and "a" in mode else f

    monkeypatch.setattr(evaluate_module, "open", opener, raising=False)
    with FakeOpenAIServer(lambda r: "<think>x</think><answer>9</answer>", models=["m"]) as server:
        status = main(["eval", "--data", str(synthetic_jsonl), "--out", str(out), "--base-url", server.base_url,
                       "--model", "m", "--no-progress", "--k", "2", "--concurrency", "1", "--budgets", "1"])
        err = capsys.readouterr().err
        assert status == 1 and "Traceback" not in err, err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert "No space left on device" in lines[0] and "2 complete records are saved" in lines[0]
        assert "rerun the same command to resume" in lines[0]
        monkeypatch.undo()  # the disk has room again: the rerun (same server: its URL is keyed) resumes
        assert main(["eval", "--data", str(synthetic_jsonl), "--out", str(out), "--base-url", server.base_url,
                     "--model", "m", "--no-progress", "--k", "2", "--concurrency", "1", "--budgets", "1"]) == 0
    assert "6 new, 2 from earlier runs" in capsys.readouterr().out
    # any other command writing to a full disk: one line with the hint (/dev/full answers ENOSPC)
    assert main(["show", str(out), "--out", "/dev/full"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "minio3 show: No space left on device; free space and rerun the same command" in err
