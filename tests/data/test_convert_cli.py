"""`minio3 data convert` / `minio3 data sft` as a user runs them (argument parsing, exit codes)."""

import json

from PIL import Image

from minio3_ext.cli import main


def _run(argv):
    return main(argv)  # as the console script runs it: bad input is one line and exit 2


def test_convert_reports_bad_rows_by_id_and_strict_fails(tmp_path, capsys):
    Image.new("RGB", (50, 40), "blue").save(tmp_path / "a.png")
    rows = [{"doc_id": "good", "problem": "<image>\nq?", "images": ["a.png"], "solution": "x"},
            {"doc_id": "broken", "problem": "<image>\nq?", "images": ["gone.png"], "solution": "y"}]
    (tmp_path / "val.json").write_text(json.dumps(rows))
    base = ["data", "convert", "visual_probe", "--input", str(tmp_path / "val.json"), "--split", "easy",
            "--out", str(tmp_path / "out"), "--formats", "jsonl,verl"]
    assert _run(base + ["--strict"]) == 1
    err = capsys.readouterr().err
    assert "broken" in err and "image not found" in err and "nothing written" in err
    assert not (tmp_path / "out").exists()
    assert _run(base) == 0
    captured = capsys.readouterr()
    assert "skipped broken" in captured.err and "1 rows kept, 1 bad rows skipped" in captured.out
    assert (tmp_path / "out" / "visual_probe_easy.verl.parquet").exists()
    assert _run(["data", "convert", "visual_probe", "--input", str(tmp_path / "nope.json"),
                 "--out", str(tmp_path / "o2")]) == 2
