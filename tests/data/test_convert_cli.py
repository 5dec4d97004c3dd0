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


def _hrbench_tsv(path):
    import base64
    import io

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "green").save(buf, format="PNG")
    header = ["index", "question", "answer", "category", "A", "B", "C", "D", "image"]
    row = [0, "What colour is it?", "A", "single", "green", "red", "blue", "grey", base64.b64encode(buf.getvalue()).decode()]
    path.write_text("\t".join(header) + "\n" + "\t".join(map(str, row)) + "\n")
    return path


def test_hrbench_split_comes_from_the_file_name_or_the_flag(tmp_path, capsys):
    """An 8k file converted without --split is labelled 8k (it was silently 4k); a name that
    says neither needs the flag; a flag that contradicts the name is refused."""
    eight = _hrbench_tsv(tmp_path / "hr_bench_8k.tsv")
    assert _run(["data", "convert", "hrbench", "--input", str(eight), "--out", str(tmp_path / "a"),
                 "--formats", "jsonl"]) == 0
    (row,) = [json.loads(line) for line in (tmp_path / "a" / "hrbench_8k.jsonl").read_text().splitlines()]
    assert row["data_source"] == "hr_bench_8k" and row["doc_id"] == "hr_bench_8k_0"
    capsys.readouterr()
    plain = _hrbench_tsv(tmp_path / "hrbench.tsv")
    assert _run(["data", "convert", "hrbench", "--input", str(plain), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pass --split 4k or --split 8k" in err and "hrbench.tsv" in err
    assert _run(["data", "convert", "hrbench", "--input", str(plain), "--split", "8k", "--out", str(tmp_path / "c"),
                 "--formats", "jsonl"]) == 0
    capsys.readouterr()
    assert _run(["data", "convert", "hrbench", "--input", str(eight), "--split", "4k", "--out", str(tmp_path / "d")]) == 2
    assert "--split 4k, but the file names say 8k" in capsys.readouterr().err
