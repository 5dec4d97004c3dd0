"""Fixtures for judge tests: a real local OpenAI-compatible server and fast configs.

``judge_server(handler)`` starts :class:`minio3_ext.testing.fake_openai.FakeOpenAIServer`
on 127.0.0.1 and stops it after the test.
Helpers (``fast_config``, ``oracle``, ``request_data``) live in ``judge_helpers``.
"""

from __future__ import annotations

import pytest

from minio3_ext.testing.fake_openai import FakeOpenAIServer


@pytest.fixture
def judge_server():
    servers = []

    def start(handler, **kwargs) -> FakeOpenAIServer:
        server = FakeOpenAIServer(handler, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()

