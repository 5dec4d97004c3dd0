"""Nothing in ``minio3_ext/verl`` keeps a copy of a tag, a regex over one, or prompt
words: they come from the episode's dialect (``minio3_ext.core.dialect``)."""

from __future__ import annotations

import ast
from pathlib import Path

import minio3_ext.verl as mv
from minio3_ext.core.dialect import get_dialect

ADAPTER = Path(mv.__file__).parent
TAGS = ("<answer>", "</answer>", "<grounding>", "</grounding>", "<tool_call>", "</tool_call>", "<think>",
        "</think>", "<image>")


def _code_strings(path: Path) -> list[str]:
    """String constants of a module, docstrings excluded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_no_tag_or_prompt_words_in_the_verl_adapter():
    d = get_dialect()
    prompt_words = [d.system_prompt()[:60], d.observation_text(0, 1)[:30], d.error_text(0, "x")[:20],
                    "Continue your reasoning", "zoom-in", "zoomed-in"]
    offenders = [(p.name, s[:60]) for p in ADAPTER.glob("*.py") for s in _code_strings(p)
                 if any(t in s for t in TAGS) or any(w.lower() in s.lower() for w in prompt_words)]
    assert offenders == []
