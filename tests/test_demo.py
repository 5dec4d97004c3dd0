"""``minio3 demo --quick`` end to end: the run folder holds metrics, the plot and a page whose images all exist."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image

from minio3_ext.cli import main

pytestmark = pytest.mark.slow


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def _open(src: str, base: Path) -> Image.Image:
    if src.startswith("data:"):
        return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    path = base / unquote(src)
    assert path.is_file(), f"the page references a missing image: {src}"
    return Image.open(path)


def test_quick_demo_writes_a_complete_run_folder(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    assert str(out / "trajectories.html") in capsys.readouterr().out

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sft"]["steps"] > 0 and metrics["sft"]["last_logged_loss"] < metrics["sft"]["first_logged_loss"]
    (step,) = metrics["grpo"]["log_history"]
    assert 0.0 <= step["minio3/masked_share"] <= 1.0
    assert sum(step[f"minio3/termination/{r}"] for r in
               ("answered", "no_answer", "turn_limit", "image_limit", "context_limit")) == pytest.approx(1.0)
    rows = metrics["eval"]["rows"]
    assert sorted(r["budget"] for r in rows) == [1, 2, 4, 8]
    assert all(r["items"] == 2 and 0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert set(metrics["timings_s"]) >= {"cold-start SFT", "masked GRPO", "evaluate"}

    with Image.open(out / "accuracy_vs_budget.png") as png:
        assert png.format == "PNG" and png.width > 100

    html_path = out / "trajectories.html"
    parser = _Images()
    parser.feed(html_path.read_text(encoding="utf-8"))
    assert parser.srcs, "the trajectory page shows no image"
    for src in parser.srcs:
        with _open(src, html_path.parent) as img:
            img.load()
            assert img.width > 0 and img.height > 0
    trajectories = [json.loads(line) for line in (out / "trajectories.jsonl").read_text().splitlines()]
    assert len(trajectories) == 2 and all(t["scored"] for t in trajectories)
