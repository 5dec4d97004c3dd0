"""The fake OpenAI-compatible server speaks the protocol the real client expects."""

from __future__ import annotations

import base64

import openai
import pytest

from minio3_ext.testing.fake_openai import Completion, FakeOpenAIServer, Fault, closed_port_url, scripted


def _client(server, **kw):
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, **kw)


def test_completion_models_and_recorded_requests():
    image = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
    with FakeOpenAIServer(lambda req: f"echo {len(req['messages'])}", models=["policy"]) as server:
        client = _client(server)
        assert [m.id for m in client.models.list()] == ["policy"]
        messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}},
                                                 {"type": "text", "text": "zoom?"}]}]
        resp = client.chat.completions.create(model="policy", messages=messages, stop=["</grounding>"])
        assert resp.choices[0].message.content == "echo 1" and resp.choices[0].finish_reason == "stop"
        assert server.requests[0]["messages"][0]["content"][0]["image_url"]["url"] == image
        assert server.requests[0]["stop"] == ["</grounding>"]


def test_multiple_choices_finish_reason_and_stream():
    replies = [["a", "b"], Completion("cut", finish_reason="length"), "streamed"]
    with FakeOpenAIServer(scripted(replies)) as server:
        client = _client(server)
        resp = client.chat.completions.create(model="m", messages=[], n=2)
        assert [c.message.content for c in resp.choices] == ["a", "b"]
        resp = client.chat.completions.create(model="m", messages=[])
        assert resp.choices[0].finish_reason == "length"
        chunks = list(client.chat.completions.create(model="m", messages=[], stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == "streamed"


@pytest.mark.parametrize("fault,error", [
    (Fault.status(429, retry_after=1), openai.RateLimitError),
    (Fault.status(500), openai.InternalServerError),
    (Fault.drop(), openai.APIConnectionError),
    (Fault.delay(1.0, then="late"), openai.APITimeoutError),
    (Fault.malformed(), ValueError),
])
def test_faults_surface_as_client_errors(fault, error):
    with FakeOpenAIServer(lambda req: fault) as server:
        with pytest.raises(error):
            timeout = 0.3 if fault.kind == "delay" else 10.0
            _client(server, timeout=timeout).chat.completions.create(model="m", messages=[])


def test_retry_after_header_and_handler_exception():
    with FakeOpenAIServer(lambda req: Fault.status(429, retry_after=2.5)) as server:
        with pytest.raises(openai.RateLimitError) as info:
            _client(server).chat.completions.create(model="m", messages=[])
        assert info.value.response.headers["retry-after"] == "2.5"

    def broken(req):
        raise KeyError("messages")

    with FakeOpenAIServer(broken) as server:
        with pytest.raises(openai.InternalServerError, match="handler raised KeyError"):
            _client(server).chat.completions.create(model="m", messages=[])


def test_closed_port_refuses():
    with pytest.raises(openai.APIConnectionError):
        openai.OpenAI(base_url=closed_port_url(), api_key="x", max_retries=0).models.list()
