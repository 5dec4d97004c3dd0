"""Every command on missing, empty or invalid input: a non-zero exit and one line naming
the file, row or flag — never a traceback, never a silent success (issue 14, items 11-12)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from minio3_ext.cli import main

MAIN = "import sys; from minio3_ext.cli import main; sys.exit(main())"
DEAD = "http://127.0.0.1:9/v1"  # never reached: the input is rejected first


@pytest.fixture
def files(tmp_path, synthetic_jsonl):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"foo": 1}\n{"bar": 2}\n')
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes('{"id": "caf\xe9"}\n'.encode("latin-1"))
    afile = tmp_path / "a_file"
    afile.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    parquet = tmp_path / "t.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"turns": [[]]}), parquet)
    return {"empty": empty, "wrong": wrong, "latin1": latin1, "file": afile, "folder": folder,
            "parquet": parquet, "good": synthetic_jsonl, "tmp": tmp_path}


def _eval(*args):
    return ["eval", "--base-url", DEAD, "--model", "m", "--no-progress", *args]


CASES = {
    # name: (argv builder, exit code, text the one line must contain)
    "show missing file": (lambda f: ["show", "nope.jsonl", "--out", str(f["tmp"] / "p.html")], 2, "nope.jsonl: no such file"),
    "show parquet": (lambda f: ["show", str(f["parquet"]), "--out", str(f["tmp"] / "p.html")], 2, "not UTF-8"),
    "show empty": (lambda f: ["show", str(f["empty"]), "--out", str(f["tmp"] / "p.html")], 2, "empty.jsonl: file is empty"),
    "show no records": (lambda f: ["show", str(f["wrong"]), "--out", str(f["tmp"] / "p.html")], 2, "no trajectory records"),
    "show out is a folder": (lambda f: ["show", str(f["good"]), "--out", str(f["folder"])], 2, "--out"),
    "show limit -1": (lambda f: ["show", str(f["good"]), "--out", "x.html", "--limit", "-1"], 2, "--limit"),
    "sft missing": (lambda f: ["data", "sft", "--trajectories", "nope.jsonl", "--out", str(f["tmp"] / "s")], 2,
                    "nope.jsonl: no such file"),
    "sft on a folder": (lambda f: ["data", "sft", "--input", str(f["folder"]), "--out", str(f["tmp"] / "s")], 2, "is a folder"),
    "sft no trajectories": (lambda f: ["data", "sft", "--input", str(f["wrong"]), "--out", str(f["tmp"] / "s")], 2,
                            "no trajectory records"),
    "convert empty": (lambda f: ["data", "convert", "visual_probe", "--input", str(f["empty"]), "--out",
                                 str(f["tmp"] / "c")], 2, "file is empty"),
    "convert wrong schema": (lambda f: ["data", "convert", "visual_probe", "--input", str(f["wrong"]), "--out",
                                        str(f["tmp"] / "c")], 1, "all 2 rows are bad"),
    "convert out is a file": (lambda f: ["data", "convert", "visual_probe", "--input", str(f["good"]), "--out",
                                         str(f["file"])], 2, "is a file"),
    "convert limit 0": (lambda f: ["data", "convert", "visual_probe", "--input", str(f["good"]), "--out",
                                   str(f["tmp"] / "c"), "--limit", "0"], 2, "--limit"),
    "convert latin-1": (lambda f: ["data", "convert", "visual_probe", "--input", str(f["latin1"]), "--out",
                                   str(f["tmp"] / "c")], 2, "latin1.jsonl: not UTF-8"),
    "eval missing": (lambda f: _eval("--data", "nope.jsonl", "--out", str(f["tmp"] / "o.jsonl")), 2, "nope.jsonl"),
    "eval empty": (lambda f: _eval("--data", str(f["empty"]), "--out", str(f["tmp"] / "o.jsonl")), 2, "file is empty"),
    "eval wrong schema": (lambda f: _eval("--data", str(f["wrong"]), "--out", str(f["tmp"] / "o.jsonl")), 2,
                          "missing 'id'"),
    "eval out is a folder": (lambda f: _eval("--data", str(f["good"]), "--out", str(f["folder"])), 2, "is a folder"),
    "eval limit 0": (lambda f: _eval("--data", str(f["good"]), "--out", "o.jsonl", "--limit", "0"), 2, "--limit"),
    "eval limit -1": (lambda f: _eval("--data", str(f["good"]), "--out", "o.jsonl", "--limit", "-1"), 2, "--limit"),
    "eval k 0": (lambda f: _eval("--data", str(f["good"]), "--out", "o.jsonl", "--k", "0"), 2, "--k"),
    "eval max-images 0": (lambda f: _eval("--data", str(f["good"]), "--out", "o.jsonl", "--max-images", "0"), 2,
                          "--max-images"),
    "eval extra-body not JSON": (lambda f: _eval("--data", str(f["good"]), "--out", "o.jsonl", "--extra-body", "{x"), 2,
                                 "--extra-body"),
    "eval judge url without model": (lambda f: _eval("--data", str(f["good"]), "--out", str(f["tmp"] / "o.jsonl"),
                                                     "--judge-base-url", DEAD), 2, "--judge-model"),
    "coldstart empty": (lambda f: ["coldstart", "--data", str(f["empty"]), "--out", str(f["tmp"] / "cs"),
                                   "--base-url", DEAD, "--model", "m"], 2, "file is empty"),
    "coldstart attempts 0": (lambda f: ["coldstart", "--data", str(f["good"]), "--out", str(f["tmp"] / "cs"),
                                        "--base-url", DEAD, "--model", "m", "--attempts", "0"], 2, "--attempts"),
    "coldstart out is a file": (lambda f: ["coldstart", "--data", str(f["good"]), "--out", str(f["file"]),
                                           "--base-url", DEAD, "--model", "m"], 2, "is a file"),
    "synth out is a file": (lambda f: ["synth", "--out", str(f["file"])], 2, "is a file"),
    "synth huge": (lambda f: ["synth", "--out", str(f["tmp"] / "s"), "--width", "100000", "--height", "100000"], 2,
                   "--width"),
    "synth area": (lambda f: ["synth", "--out", str(f["tmp"] / "s"), "--width", "20000", "--height", "20000"], 2,
                   "pixels per image"),
    "demo out is a file": (lambda f: ["demo", "--out", str(f["file"])], 2, "is a file"),
    "doctor timeout 0": (lambda f: ["doctor", "--timeout", "0"], 2, "--timeout"),
    "judge check retries -1": (lambda f: ["judge", "check", "--base-url", DEAD, "--retries", "-1"], 2, "--retries"),
    "judge check url without model": (lambda f: ["judge", "check", "--base-url", DEAD], 2, "--model"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_and_a_nonzero_exit(name, files, capsys, monkeypatch):
    build, code, text = CASES[name]
    monkeypatch.delenv("MINIO3_JUDGE_MODEL", raising=False)
    monkeypatch.delenv("MINIO3_DEBUG", raising=False)
    try:
        status = main(build(files))
    except SystemExit as e:  # argparse rejected a value
        status = e.code
    err = capsys.readouterr().err
    assert status == code, (name, status, err)
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if not line.startswith(("usage:", " ", "skipped "))]
    assert len(lines) == 1, (name, err)
    assert text in lines[0], (name, err)
    assert "JudgeConfig." not in err and "EpisodeConfig." not in err


def test_convert_with_no_usable_row_writes_no_training_files(files, capsys):
    out = files["tmp"] / "c"
    assert main(["data", "convert", "visual_probe", "--input", str(files["wrong"]), "--out", str(out)]) == 1
    written = [p for p in out.rglob("*") if p.suffix in (".jsonl", ".parquet", ".trl")] if out.exists() else []
    assert written == []


def test_ctrl_c_during_eval_says_how_to_resume(synthetic_jsonl, tmp_path):
    from minio3_ext.testing.fake_openai import FakeOpenAIServer, Fault

    out = tmp_path / "run.jsonl"
    with FakeOpenAIServer(lambda r: Fault.delay(0.3, then="<answer>A</answer>"), models=["m"]) as server:
        proc = subprocess.Popen([sys.executable, "-c", MAIN, "eval", "--input", str(synthetic_jsonl), "--out", str(out),
                                 "--base-url", server.base_url, "--model", "m", "--no-progress", "--k", "8",
                                 "--concurrency", "1", "--budgets", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (out.exists() and out.read_bytes().count(b"\n") >= 1):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "Rerun the same command to resume" in err and str(out) in err
    saved = [json.loads(line) for line in out.read_text().splitlines()]
    assert saved and all(r["answer"] == "A" for r in saved)
