"""``minio3 judge check`` against a local OpenAI-compatible server."""

from __future__ import annotations

import json

from judge_helpers import request_data

from minio3_ext.cli import COMMANDS
from minio3_ext.commands.judge import CHECK_PAIRS
from minio3_ext.testing.fake_openai import Fault, closed_port_url

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


def test_check_reports_unreachable_endpoint(capsys):
    rc = main(["judge", "check", "--base-url", closed_port_url(), "--model", "m", "--retries", "0",
               "--timeout", "10"])
    out = capsys.readouterr().out
    assert rc == 1 and "unscorable 10" in out and "connection" in out


def test_check_reports_rejected_config(judge_server, capsys):
    server = judge_server(lambda request: Fault.status(401, message="invalid api key"))
    rc = main(["judge", "check", "--base-url", server.base_url, "--model", "m"])
    assert rc == 2 and "HTTP 401" in capsys.readouterr().err


def test_check_needs_an_endpoint(capsys, monkeypatch):
    monkeypatch.delenv("MINIO3_JUDGE_BASE_URL", raising=False)
    assert main(["judge", "check"]) == 2
    assert "--base-url" in capsys.readouterr().err
