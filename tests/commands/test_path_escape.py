"""Issue 21 item 4: image paths stay inside the image root in every command that reads
them (`data convert`, `data import-coldstart`, `eval`, `coldstart`), unless
--allow-outside-root; one rule (minio3_ext.core.paths.confine), one flag."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from minio3_ext.cli import main
from minio3_ext.core.paths import ALLOW_FLAG, PathEscapeError, confine
from minio3_ext.eval.evaluate import load_items

DEAD = "http://127.0.0.1:9/v1"  # never reached: the rows are refused first


@pytest.fixture
def layout(tmp_path):
    """``data/`` (the dataset, one good image) and ``private/secret.png`` outside it,
    reachable as '..', as an absolute path and through a symlink inside ``data/``."""
    data, private = tmp_path / "data", tmp_path / "private"
    (data / "img").mkdir(parents=True)
    private.mkdir()
    Image.new("RGB", (400, 400), "red").save(data / "img" / "ok.png")
    Image.new("RGB", (400, 400), "blue").save(private / "secret.png")
    (data / "img" / "link.png").symlink_to(private / "secret.png")
    return {"data": data, "secret": private / "secret.png",
            "escapes": {"dotdot": "../private/secret.png", "absolute": str(private / "secret.png"),
                        "symlink": "img/link.png"}}


def _rows_file(data, image):
    path = data / "rows.jsonl"
    path.write_text(json.dumps({"doc_id": "r1", "problem": "<image>\nWhat colour?", "images": [image],
                                "solution": "red", "data_source": "x"}) + "\n")
    return path


def _coldstart_file(data, image):
    path = data / "cold.json"
    conv = [{"from": "human", "value": "<image>\nWhat colour?"},
            {"from": "gpt", "value": "<think>Plain.</think> <answer>red</answer>"}]
    path.write_text(json.dumps([{"conversations": conv, "images": [image]}]))
    return path


COMMANDS = {
    "eval": lambda f, out: ["eval", "--data", str(f), "--out", str(out / "o.jsonl"), "--base-url", DEAD,
                            "--model", "m", "--no-progress"],
    "coldstart": lambda f, out: ["coldstart", "--data", str(f), "--out", str(out / "cs"), "--base-url", DEAD,
                                 "--model", "m"],
    "data convert": lambda f, out: ["data", "convert", "visual_probe", "--input", str(f), "--out", str(out / "c"),
                                    "--strict"],
    "data import-coldstart": lambda f, out: ["data", "import-coldstart", "--input", str(f), "--out", str(out / "ic"),
                                             "--strict"],
}


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_image_outside_the_root_is_refused_naming_it_and_the_flag(layout, tmp_path, capsys, monkeypatch,
                                                                      command, how):
    monkeypatch.delenv("MINIO3_JUDGE_MODEL", raising=False)
    image = layout["escapes"][how]
    make = _coldstart_file if command == "data import-coldstart" else _rows_file
    status = main(COMMANDS[command](make(layout["data"], image), tmp_path / "out"))
    err = capsys.readouterr().err
    assert status != 0 and "Traceback" not in err, err
    assert f"image {image!r} is outside the image root" in err and ALLOW_FLAG in err, err
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] if (tmp_path / "out").exists() else []
    assert not any(p.suffix in (".jsonl", ".parquet") for p in written), written


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_the_flag_lets_the_path_out(layout, tmp_path, how):
    image = layout["escapes"][how]
    [item] = load_items([_rows_file(layout["data"], image)], allow_outside_root=True)
    assert confine(item["image"], layout["data"], allow_outside=True) == str(layout["secret"].resolve())
    out = tmp_path / "c"
    assert main(["data", "convert", "visual_probe", "--input", str(_rows_file(layout["data"], image)), "--out", str(out),
                 "--strict", ALLOW_FLAG]) == 0
    row = json.loads((out / "visual_probe_train.jsonl").read_text())
    assert row["images"] == [str(layout["secret"].resolve())]
    assert main(["data", "import-coldstart", "--input", str(_coldstart_file(layout["data"], image)),
                 "--out", str(tmp_path / "ic"), "--strict", ALLOW_FLAG]) == 0


def test_paths_inside_the_root_still_work(layout, tmp_path):
    ok = layout["data"] / "img" / "ok.png"
    for image in ("img/ok.png", str(ok), "img/../img/ok.png"):
        assert confine(image, layout["data"]) == str(ok.resolve())
        assert load_items([_rows_file(layout["data"], image)])[0]["image"].endswith("ok.png")
    out = tmp_path / "c"
    assert main(["data", "convert", "visual_probe", "--input", str(_rows_file(layout["data"], "img/ok.png")),
                 "--out", str(out), "--strict"]) == 0
    # --image-root moves the root: the same '..' path is inside a root one folder up
    [item] = load_items([_rows_file(layout["data"], "private/secret.png")], image_root=str(layout["data"].parent))
    assert item["image"].endswith("secret.png")


def test_one_flag_in_every_help(capsys):
    for argv in (["eval"], ["coldstart"], ["data", "convert"], ["data", "import-coldstart"]):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        assert ALLOW_FLAG in capsys.readouterr().out, argv


def test_the_rule_names_why():
    with pytest.raises(PathEscapeError, match=r"'\.\.' to"):
        confine("a/../../x.png", "/srv/data")
    with pytest.raises(PathEscapeError, match="absolute path"):
        confine("/etc/passwd", "/srv/data")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_image_that_is_a_named_pipe_is_refused_not_read(layout, tmp_path, capsys, monkeypatch, command):
    """Issue 21 item 6: opening a FIFO blocks until a writer comes (forever, and Ctrl-C
    does not stop it): a non-regular file is refused with one line, before it is opened."""
    import os

    monkeypatch.delenv("MINIO3_JUDGE_MODEL", raising=False)
    os.mkfifo(layout["data"] / "img" / "pipe.png")
    make = _coldstart_file if command == "data import-coldstart" else _rows_file
    status = main(COMMANDS[command](make(layout["data"], "img/pipe.png"), tmp_path / "out"))
    err = capsys.readouterr().err
    assert status != 0 and "Traceback" not in err, err
    assert "img/pipe.png" in err and "not a regular file" in err, err
