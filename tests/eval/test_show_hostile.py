"""Issue 21 item 8: `minio3 show` on large images and malformed records."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from minio3_ext.cli import main


def _chain(image: str, width: int, height: int, turns: int) -> dict:
    """A trajectory that zooms ``turns`` times, each crop a little smaller than its source."""
    out, (w, h) = [], (width, height)
    ox = oy = 0
    for k in range(turns):
        box = [8, 8, w - 8, h - 8]
        out.append({"turn": k + 1, "assistant": "<think>closer</think>",
                    "action": {"kind": "zoom", "source": "original_image" if k == 0 else f"observation_{k}",
                               "box": box, "box_in_original": [ox + 8, oy + 8, ox + w - 8, oy + h - 8]},
                    "observation_index": k + 1, "observation_text": "obs"})
        ox, oy, w, h = ox + 8, oy + 8, w - 16, h - 16
    out.append({"turn": turns + 1, "assistant": "<answer>red</answer>", "action": {"kind": "answer"}})
    return {"id": "big", "sample": 0, "image": image, "question": "q", "ground_truth": "red", "answer": "red",
            "verdict": 1, "scored": True, "termination_reason": "answered", "turns": out}


_PEAK = """
import sys
from minio3_ext.cli import main
import minio3_ext.eval.report, minio3_ext.eval.runner, minio3_ext.commands.show  # imports before the reset
def status(key):
    return int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1]) * 1024
open('/proc/self/clear_refs', 'w').write('5')
before = status('VmRSS:')
assert main(['show', sys.argv[1], '--out', sys.argv[2]]) == 0
print('PEAK', status('VmHWM:') - before)
"""


def test_recut_crops_are_bounded_by_downscaling_first(tmp_path):
    """12 near-full-size zooms of a 24 MP original: the page is cut from the original
    reduced while read, so the peak stays near one decoded original (69 MiB; measured 131 MiB), where the
    full-resolution chain of crops peaked at 1254 MiB."""
    width, height = 6000, 4000
    image = tmp_path / "big.jpg"
    Image.radial_gradient("L").resize((width, height)).convert("RGB").save(image, quality=70)
    records = tmp_path / "run.jsonl"
    records.write_text(json.dumps(_chain(str(image), width, height, 12)) + "\n")
    proc = subprocess.run([sys.executable, "-c", _PEAK, str(records), str(tmp_path / "page.html")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    peak = int(proc.stdout.split("PEAK")[1])
    raw = width * height * 3
    print(f"show peak RSS growth: {peak / 2**20:.0f} MiB for a {raw / 2**20:.0f} MiB original, 12 recut crops")
    assert peak < 3 * raw, f"{peak / 2**20:.0f} MiB"
    assert len(list((tmp_path / "page_files").glob("t0_obs*.jpg"))) == 12
    with Image.open(tmp_path / "page_files" / "t0_obs12.jpg") as crop:
        assert max(crop.size) <= 640 and abs(crop.width / crop.height - (width - 192) / (height - 192)) < 0.02


def _good(image):
    return {"id": "good", "image": str(image), "question": "q", "turns": [
        {"turn": 1, "assistant": "a", "action": {"kind": "zoom", "source": "original_image", "box": [0, 0, 40, 40]},
         "observation_index": 1},
        {"turn": 2, "assistant": "<answer>x</answer>", "action": {"kind": "answer"}}]}


def _with(image, change):
    record = _good(image)
    change(record)
    return record


MALFORMED = {  # name: (edit of a good record, text of its one line)
    "turns not a list": (lambda r: r.update(turns={"a": 1}), "'turns' must be a list"),
    "turn not an object": (lambda r: r["turns"].insert(0, 7), "turn 1: must be a JSON object"),
    "turn number text": (lambda r: r["turns"][0].update(turn="one"), "'turn' must be an integer"),
    "action a string": (lambda r: r["turns"][0].update(action="zoom"), "'action' must be a JSON object"),
    "source a list": (lambda r: r["turns"][0]["action"].update(source=["original_image"]), "action 'source' must be text"),
    "box of 2": (lambda r: r["turns"][0]["action"].update(box=[1, 2]), "action 'box' must be 4 integers"),
    "box of text": (lambda r: r["turns"][0]["action"].update(box="0,0,4,4"), "action 'box' must be 4 integers"),
    "box inverted": (lambda r: r["turns"][0]["action"].update(box=[40, 40, 0, 0]), "0 <= x0 < x1"),
    "box in original of null": (lambda r: r["turns"][0]["action"].update(box_in_original=[None] * 4),
                                "action 'box_in_original' must be 4 integers"),
    "observation index a path": (lambda r: r["turns"][0].update(observation_index="../../x"),
                                 "'observation_index' must be an integer"),
    "observation image a number": (lambda r: r["turns"][0].update(observation_image=3),
                                   "'observation_image' must be a path"),
    "image a list": (lambda r: r.update(image=["a.png"]), "'image' must be a path"),
    "kind a number": (lambda r: r["turns"][0]["action"].update(kind=1), "action 'kind' must be text"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_record_is_one_line_and_the_rest_is_shown(name, tmp_path, capsys):
    image = tmp_path / "img.png"
    Image.new("RGB", (200, 100), "red").save(image)
    change, text = MALFORMED[name]
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(_good(image)) + "\n" + json.dumps(_with(image, change)) + "\n")
    status = main(["show", str(path), "--out", str(tmp_path / "page.html")])
    err = capsys.readouterr().err
    assert status == 0 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and f"{path} record 2 (id 'good')" in err and text in err, err
    assert "1 trajectories" in (tmp_path / "page.html").read_text()
    assert not list(tmp_path.parent.glob("x*.jpg"))  # nothing written outside the page folder


def test_only_malformed_records_fail_naming_them(tmp_path, capsys):
    image = tmp_path / "img.png"
    Image.new("RGB", (200, 100), "red").save(image)
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(_with(image, lambda r: r.update(turns=[1]))) + "\n")
    assert main(["show", str(path), "--out", str(tmp_path / "page.html")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no record can be shown" in err.splitlines()[-1], err


def test_budget_on_a_record_without_its_fields_is_one_line(tmp_path, capsys):
    image = tmp_path / "img.png"
    Image.new("RGB", (200, 100), "red").save(image)
    path = tmp_path / "run.jsonl"
    record = {**_good(image), "budget": 8}
    del record["turns"][0]["action"]  # at_budget needs the last kept turn's action
    path.write_text(json.dumps(_good(image)) + "\n" + json.dumps(record) + "\n")
    status = main(["show", str(path), "--out", str(tmp_path / "page.html"), "--budget", "1"])
    err = capsys.readouterr().err
    assert status == 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "record 2" in err and "cannot cut to --budget 1" in err, err
