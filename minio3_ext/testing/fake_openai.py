"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions protocol.

For tests and benchmarks of anything that talks to an OpenAI-compatible endpoint (the
judge, a VLM policy served by vLLM). Standard library only; the server runs in a
daemon thread::

    from minio3_ext.testing.fake_openai import FakeOpenAIServer, Fault

    def handler(request: dict):
        # request is the parsed JSON body of POST /v1/chat/completions
        text = request["messages"][-1]["content"]
        return "Score: 1"                      # a normal completion
        # or Fault.delay(5.0)                  # sleep past the client's timeout
        # or Fault.status(429, retry_after=0.1) / Fault.status(500)
        # or Fault.malformed()                 # 200 with a body that is not JSON
        # or Fault.drop()                      # close the connection, no response

    with FakeOpenAIServer(handler) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
        ...
        assert len(server.requests) == 1

A handler may return: a ``str`` (one choice), a ``list[str]`` (one choice each, for
``n > 1``), a :class:`Completion` (text, finish reason, usage), a ``dict`` (sent as
the JSON body verbatim), or a :class:`Fault`. ``Fault.delay(s, then=reply)`` sleeps,
then sends ``then``. A request with ``"stream": true`` gets server-sent events with
the whole text in one chunk. An exception in the handler becomes a 500 whose body
names it. ``GET /v1/models`` lists ``models``; like vLLM, the server answers only under
``/v1`` (anything else is a 404). Every request body received on
``/v1/chat/completions`` is appended to ``server.requests`` (parsed JSON), message
contents untouched, so image_url parts (base64 data URLs) are visible to tests; its
HTTP headers go to ``server.request_headers`` (lower-case names, e.g. ``authorization``).
"""

from __future__ import annotations

import itertools
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable

__all__ = ["FakeOpenAIServer", "Fault", "Completion", "Handler", "scripted", "closed_port_url"]


@dataclass
class Completion:
    text: str | list[str]
    finish_reason: str = "stop"
    usage: dict[str, int] | None = None


@dataclass
class Fault:
    """A scripted failure; build with the class methods."""

    kind: str
    seconds: float = 0.0
    code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    then: Any = None

    @classmethod
    def delay(cls, seconds: float, then: Any = "") -> "Fault":
        """Sleep ``seconds`` (interrupted when the server closes), then answer ``then``."""
        return cls("delay", seconds=seconds, then=then)

    @classmethod
    def status(cls, code: int, retry_after: float | None = None, message: str = "scripted error") -> "Fault":
        """An HTTP error with an OpenAI-style error body (and ``Retry-After`` if given)."""
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        body = json.dumps({"error": {"message": message, "type": "scripted", "code": code}}).encode()
        return cls("status", code=code, headers=headers, body=body)

    @classmethod
    def malformed(cls, body: bytes = b'{"id": "x", "choices": [ {"message": ') -> "Fault":
        """HTTP 200 with a JSON content type and a body that is not valid JSON."""
        return cls("malformed", code=200, body=body)

    @classmethod
    def drop(cls) -> "Fault":
        """Close the connection without sending a response."""
        return cls("drop")


Handler = Callable[[dict], Any]


def scripted(replies: Iterable[Any], default: Any = None) -> Handler:
    """A handler that answers with ``replies`` in order (thread-safe), then ``default``."""
    it = iter(replies)
    lock = threading.Lock()

    def handler(_request: dict) -> Any:
        with lock:
            return next(it, default)

    return handler


def closed_port_url() -> str:
    """A ``base_url`` on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    owner: "FakeOpenAIServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that gave up (timeout, cancelled retry) is not a server bug
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid a 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/v1/") and self.path.rstrip("/").endswith("/models"):
            models = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.server.owner.models]
            self._send_json(200, {"object": "list", "data": models})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "code": 404}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not (self.path.startswith("/v1/") and self.path.rstrip("/").endswith("/chat/completions")):
            self._send_json(404, {"error": {"message": f"no route {self.path}", "code": 404}})
            return
        try:
            request = json.loads(raw or b"{}")
        except json.JSONDecodeError as e:
            self._send_json(400, {"error": {"message": f"request is not JSON: {e}", "code": 400}})
            return
        owner = self.server.owner
        owner._record(request, {k.lower(): v for k, v in self.headers.items()})
        try:
            reply = owner.handler(request)
        except Exception as e:  # surfaced to the client as a 500 naming the bug
            self._send_json(500, {"error": {"message": f"handler raised {e!r}", "code": 500}})
            return
        self._answer(request, reply)

    def _answer(self, request: dict, reply: Any) -> None:
        owner = self.server.owner
        if isinstance(reply, Fault):
            if reply.kind == "delay":
                if owner._closing.wait(reply.seconds):
                    self.close_connection = True
                    return
                return self._answer(request, reply.then)
            if reply.kind == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            return self._send_bytes(reply.code, reply.body, headers=reply.headers)
        if isinstance(reply, dict):
            return self._send_json(200, reply)
        if not isinstance(reply, Completion):
            reply = Completion(reply if isinstance(reply, list) else ("" if reply is None else str(reply)))
        if request.get("stream"):
            return self._stream(request, reply)
        self._send_json(200, owner._completion_body(request, reply))

    def _stream(self, request: dict, reply: Completion) -> None:
        texts = reply.text if isinstance(reply.text, list) else [reply.text]
        cid, model = self.server.owner._next_id(), request.get("model", "fake")
        events = []
        for i, text in enumerate(texts):
            for delta, finish in (({"role": "assistant", "content": text}, None), ({}, reply.finish_reason)):
                chunk = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                         "choices": [{"index": i, "delta": delta, "finish_reason": finish}]}
                events.append(f"data: {json.dumps(chunk)}\n\n")
        events.append("data: [DONE]\n\n")
        self._send_bytes(200, "".join(events).encode(), content_type="text/event-stream")

    def _send_json(self, code: int, body: dict) -> None:
        self._send_bytes(code, json.dumps(body).encode())

    def _send_bytes(self, code: int, body: bytes, headers: dict[str, str] | None = None,
                    content_type: str = "application/json") -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout fired)


class FakeOpenAIServer:
    """Context manager: start on enter (``.base_url`` ready), stop on exit."""

    def __init__(self, handler: Handler, models: Iterable[str] = ("fake-judge",), host: str = "127.0.0.1",
                 port: int = 0):
        self.handler = handler
        self.models = list(models)
        self.requests: list[dict] = []
        self.request_headers: list[dict[str, str]] = []  # same order as ``requests``
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._closing = threading.Event()
        self._httpd = _Server((host, port), _RequestHandler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "FakeOpenAIServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _record(self, request: dict, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(request)
            self.request_headers.append(headers)

    def _next_id(self) -> str:
        return f"chatcmpl-fake-{next(self._ids)}"

    def _completion_body(self, request: dict, reply: Completion) -> dict:
        texts = reply.text if isinstance(reply.text, list) else [reply.text]
        usage = reply.usage or {"prompt_tokens": 0, "completion_tokens": sum(len(t.split()) for t in texts),
                                "total_tokens": sum(len(t.split()) for t in texts)}
        return {
            "id": self._next_id(), "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model", "fake"),
            "choices": [{"index": i, "message": {"role": "assistant", "content": t},
                         "finish_reason": reply.finish_reason, "logprobs": None} for i, t in enumerate(texts)],
            "usage": usage,
        }
