"""`minio3 eval` against a real OpenAI-compatible server the package does not contain:
`transformers serve` (from the dev extra's ``transformers[serving]``) on the tiny
Qwen2.5-VL, started here on loopback. It answers HTTP 500 to any request with
``stop``, cannot list a local model in ``GET /v1/models``, and rejects (HTTP 422) the
extra sampling fields every request states (top_k, repetition_penalty, min_p): the
policy then sends the whole sampling in its ``generation_config`` field (issue 18), so
the run samples without any ``--extra-body``."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

MAIN = "import sys; from minio3_ext.cli import main; sys.exit(main())"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def serve(tiny_qwen_dir, tmp_path_factory):
    port = _free_port()
    cache = tmp_path_factory.mktemp("hf_cache")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    log = open(tmp_path_factory.mktemp("serve") / "serve.log", "w+")
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from transformers.cli.transformers import main; "
                             "sys.argv[0] = 'transformers'; sys.exit(main())", "serve", str(tiny_qwen_dir),
                             "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while True:
        try:
            with urllib.request.urlopen(base + "/health", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            proc.kill()
            pytest.fail(f"transformers serve did not start:\n{log.read()[-3000:]}")
        time.sleep(0.5)
    yield {"url": base + "/v1", "model": str(tiny_qwen_dir)}
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _eval(serve, items, out, *extra):
    cmd = [sys.executable, "-c", MAIN, "eval", "--input", str(items), "--out", str(out), "--base-url", serve["url"],
           "--model", serve["model"], "--budgets", "2", "--limit", "2", "--max-tokens", "24", "--concurrency", "2",
           "--no-progress", "--max-images", "3", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIO3_JUDGE_")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow  # starts `transformers serve` with the tiny model (~17 s)
def test_eval_runs_against_transformers_serve(serve, synth_items, tmp_path):
    _, items = synth_items
    sample = ["--extra-body", json.dumps({"generation_config": json.dumps({"do_sample": True})})]
    # with stop strings the server fails: the message carries its body and the URL, and the run is partial
    with_stop = _eval(serve, items, tmp_path / "stop.jsonl", "--k", "1", *sample)
    assert with_stop.returncode == 1
    assert "HTTP 500: Internal Server Error" in with_stop.stderr and serve["url"] in with_stop.stderr
    assert "Partial run" in with_stop.stdout
    # --no-stop, and no --extra-body: the sampling flags reach it through generation_config; it samples
    out = tmp_path / "run.jsonl"
    ok = _eval(serve, items, out, "--k", "2", "--no-stop")
    assert ok.returncode == 0, ok.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 4 and all(r["scored"] for r in records)
    run = json.loads(out.with_suffix(".summary.json").read_text())["run"]
    assert run["sampling_in_generation_config"] is True and run["sampling"]["top_k"] == -1
    assert {r["termination_reason"] for r in records} <= {"answered", "no_answer", "turn_limit", "image_limit",
                                                            "context_limit"}
    assert "cannot check that it serves" in ok.stderr  # its GET /v1/models cannot list a local model
    assert "identical" not in ok.stderr
    assert "Partial run" not in ok.stdout
    # greedy (the server's default): K identical samples are called out
    greedy = _eval(serve, items, tmp_path / "greedy.jsonl", "--k", "2", "--no-stop", "--temperature", "0")
    assert greedy.returncode == 0, greedy.stderr
    assert "every sample of each of the 2 items is identical" in greedy.stderr
