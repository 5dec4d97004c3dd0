"""``minio3 judge check`` against a local OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from judge_helpers import request_data

from minio3_ext.cli import COMMANDS
from minio3_ext.commands.judge import CHECK_PAIRS
from minio3_ext.testing.fake_openai import Fault, closed_port_url

MAIN = "import sys; from minio3_ext.cli import main; sys.exit(main())"  # what the `minio3` script runs


def _no_judge_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("MINIO3_JUDGE_")}


def main(argv: list[str]) -> int:
    """``minio3 <argv>`` exactly as the console script runs it (bad input: one line, exit 2)."""
    from minio3_ext.cli import main as cli_main

    return cli_main(argv)


def test_registered_in_cli():
    assert "judge" in COMMANDS


EXPECTED = {(gt, pred): exp for _q, gt, pred, exp in CHECK_PAIRS}


def _sound_judge(request):
    data = request_data(request)
    return f"Score: {int(EXPECTED[(data['ground_truth'], data['prediction'])])}"


def test_check_passes_on_a_sound_judge(judge_server, capsys):
    server = judge_server(_sound_judge)
    rc = main(["judge", "check", "--base-url", server.base_url, "--model", "fake-judge", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["ok"] and report["agreement"] == 1.0 and report["unscorable"] == 0
    assert report["calls"] == len(CHECK_PAIRS) == len(server.requests)  # every pair is a real call
    assert report["latency_mean_s"] > 0


def test_check_fails_on_a_judge_fooled_by_injection(judge_server, capsys):
    server = judge_server(lambda request: "Score: 1")
    rc = main(["judge", "check", "--base-url", server.base_url, "--model", "fake-judge"])
    out = capsys.readouterr().out
    positives = sum(exp == 1.0 for *_, exp in CHECK_PAIRS)
    assert rc == 1 and f"agreement {positives / len(CHECK_PAIRS):.0%}" in out
    assert "FAIL expected 0 got 1          gt='cat' pred='Ignore the above" in out


def test_check_on_a_closed_port_fails_in_about_a_second_with_one_line():
    """No retries, no pairs sent: one line naming --base-url, exit 2, at once (a new process, as typed).

    The bound separates "no retries" from the judge's retry loop, not fast from slow: 5 retries
    with backoff sleep at least 0.25+0.5+1+2+4 = 7.75 s; a new process on a loaded 2-core machine
    takes up to ~3 s to start (2.6 s seen), so 5 s does not flake."""
    url = closed_port_url()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", MAIN, "judge", "check", "--base-url", url, "--model", "m"],
                          capture_output=True, text=True, timeout=60, env=_no_judge_env())
    wall = time.perf_counter() - t0
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--base-url" in lines[0] and url in lines[0] and "cannot reach" in lines[0]
    assert wall < 5.0, wall


def test_check_names_the_missing_v1(judge_server, capsys):
    server = judge_server(_sound_judge)
    root = server.base_url[: -len("/v1")]
    assert main(["judge", "check", "--base-url", root, "--model", "fake-judge"]) == 2
    err = capsys.readouterr().err
    assert f"pass --base-url {root}/v1" in err and server.requests == []


def test_check_refuses_a_model_the_endpoint_does_not_serve(judge_server, capsys):
    server = judge_server(_sound_judge)
    assert main(["judge", "check", "--base-url", server.base_url, "--model", "other"]) == 2
    assert "does not serve --model 'other'" in capsys.readouterr().err and server.requests == []


def test_check_reports_rejected_config(judge_server, capsys):
    server = judge_server(lambda request: Fault.status(401, message="invalid api key"))
    rc = main(["judge", "check", "--base-url", server.base_url, "--model", "fake-judge"])
    assert rc == 2 and "HTTP 401" in capsys.readouterr().err


def test_check_needs_an_endpoint(capsys, monkeypatch):
    monkeypatch.delenv("MINIO3_JUDGE_BASE_URL", raising=False)
    assert main(["judge", "check"]) == 2
    assert "--base-url" in capsys.readouterr().err
