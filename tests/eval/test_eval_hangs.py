"""Issue 21 item 6: ``--timeout`` bounds a whole request, also from a server that trickles
bytes; a dataset image that is a named pipe is refused with one line, never a hang
(here for ``eval`` end to end; every command: tests/commands/test_path_escape.py)."""

import asyncio
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from minio3_ext.eval.openai_policy import EndpointError, OpenAIPolicy
from test_eval_sampling import _eval


class _Trickle(BaseHTTPRequestHandler):
    """Lists one model; answers a completion one byte every 0.2 s, never finishing."""

    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": "policy", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(300):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def trickle_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_timeout_bounds_a_trickling_reply(trickle_url):
    policy = OpenAIPolicy(trickle_url, "policy", timeout=1.0, max_retries=0)
    message = [{"role": "user", "content": [{"type": "text", "text": "q"}]}]
    start = time.monotonic()
    with pytest.raises(EndpointError, match=r"no complete reply within --timeout 1s"):
        asyncio.run(policy(message))
    assert time.monotonic() - start < 5  # the old client read on for the whole 60 s trickle


def test_a_named_pipe_image_is_refused_in_eval(synth_items, tmp_path):
    rows, _ = synth_items
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    data = tmp_path / "items.jsonl"
    data.write_text(json.dumps({**rows[0], "image": str(fifo)}) + "\n")
    proc = _eval(data, tmp_path / "out.jsonl", "http://127.0.0.1:9/v1")  # refused before any request
    assert proc.returncode == 2, proc.stderr
    assert "not a regular file" in proc.stderr and "Traceback" not in proc.stderr
