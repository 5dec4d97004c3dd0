"""Offline test fixtures: a tiny random-weight Qwen2.5-VL with its tokenizer and processor.

    from minio3_ext.testing import save_tiny_qwen, load_tiny_qwen
    model, processor = load_tiny_qwen(save_tiny_qwen(tmp_dir))

See :mod:`minio3_ext.testing.tiny_qwen`. Importing this package imports transformers.
"""

from minio3_ext.testing.tiny_qwen import (
    build_model,
    build_processor,
    build_tokenizer,
    load_tiny_qwen,
    save_tiny_qwen,
)

__all__ = ["build_model", "build_processor", "build_tokenizer", "load_tiny_qwen", "save_tiny_qwen"]
