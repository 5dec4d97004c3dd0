"""Offline test fixtures: a tiny random-weight Qwen2.5-VL with its tokenizer and
processor (:mod:`minio3_ext.testing.tiny_qwen`), and a scriptable OpenAI-compatible
HTTP server (:mod:`minio3_ext.testing.fake_openai`).

    from minio3_ext.testing import save_tiny_qwen, load_tiny_qwen
    model, processor = load_tiny_qwen(save_tiny_qwen(tmp_dir))

The tiny-model names are imported lazily, so ``fake_openai`` does not pull in
transformers.
"""

import importlib

__all__ = ["build_model", "build_processor", "build_tokenizer", "load_tiny_qwen", "save_tiny_qwen"]


def __getattr__(name):
    if name in __all__:
        return getattr(importlib.import_module("minio3_ext.testing.tiny_qwen"), name)
    raise AttributeError(f"module 'minio3_ext.testing' has no attribute {name!r}")
