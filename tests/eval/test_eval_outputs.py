"""Issue 21 item 5: one run per output file, the dataset is never the output, crop names
stay apart after cleaning, and a last record without its newline survives a resume."""

import json

from PIL import Image

from eval_vlm_script import ScriptedVLM, exact_judge
from minio3_ext.eval.evaluate import output_lock, read_records, repair_tail
from minio3_ext.eval.runner import _save_crop
from minio3_ext.testing.fake_openai import FakeOpenAIServer
from test_eval_sampling import _eval


def test_a_second_eval_on_a_locked_output_fails_at_once(synth_items, tmp_path):
    rows, path = synth_items
    out = tmp_path / "out.jsonl"
    with FakeOpenAIServer(ScriptedVLM({r["doc_id"]: r for r in rows}, {r["doc_id"]: "solve" for r in rows}),
                          models=["policy"]) as server:
        with output_lock(out):  # what a running `minio3 eval --out out.jsonl` holds
            proc = _eval(path, out, server.base_url, "--k", "1")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "another minio3 eval is writing this file" in proc.stderr
        assert out.read_text() == "" and server.requests == []
        proc = _eval(path, out, server.base_url, "--k", "1")  # the lock is gone with its holder
        assert proc.returncode == 0, proc.stderr
        assert len(read_records(out)) == len(rows)


def test_out_equal_to_input_is_refused(synth_items, tmp_path):
    rows, path = synth_items
    data = tmp_path / "items.jsonl"
    data.write_bytes(path.read_bytes())
    before = data.read_bytes()
    with FakeOpenAIServer(exact_judge, models=["policy"]) as server:
        proc = _eval(data, data, server.base_url)
        assert server.requests == []
    assert proc.returncode == 2 and "is the --input file" in proc.stderr and "Traceback" not in proc.stderr
    assert data.read_bytes() == before


def test_crop_names_stay_apart_after_cleaning(tmp_path):
    img = Image.new("RGB", (8, 8))
    paths = {_save_crop(img, tmp_path, item_id, 0, 1) for item_id in ("a/b", "a_b", "a b", "a?b")}
    assert len(paths) == 4
    assert _save_crop(img, tmp_path, "plain-id_1", 0, 1).endswith("plain-id_1_s0_obs1.jpg")


def test_a_last_record_without_newline_is_kept(tmp_path):
    out = tmp_path / "out.jsonl"
    first, last = {"id": "a", "sample": 0}, {"id": "b", "sample": 0}
    out.write_text(json.dumps(first) + "\n" + json.dumps(last))  # killed before the newline
    assert repair_tail(out) == 0
    assert out.read_text() == json.dumps(first) + "\n" + json.dumps(last) + "\n"
    out.write_text(json.dumps(first) + "\n" + json.dumps(last)[:-3])  # killed mid-record: cut
    assert repair_tail(out) == len(json.dumps(last)) - 3
    assert [r["id"] for r in read_records(out)] == ["a"]
