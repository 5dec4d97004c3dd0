"""Read a recipe's Hydra override list (``recipes/verl/*.args``).

One override per line; ``#`` starts a comment (each override carries one). Two
expansions: ``$VAR``/``${VAR}`` from the environment (unset variables are an error
naming the file and line), and ``@config:NAME`` → the absolute path of a YAML shipped
in ``minio3_ext/verl/config`` (Hydra wants absolute paths)::

    mapfile -t OVERRIDES < <(python -m minio3_ext.verl.recipe recipes/verl/masked_grpo.args)
    python -m verl.trainer.main_ppo "${OVERRIDES[@]}" "$@"
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Mapping

__all__ = ["read_overrides"]

_CONFIG_RE = re.compile(r"@config:([\w.\-]+)")
_VAR_RE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def read_overrides(path: str | os.PathLike, env: Mapping[str, str] | None = None) -> list[str]:
    """The overrides in ``path``, expanded (see the module docstring)."""
    from . import config_path

    env = os.environ if env is None else env
    out = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue

        def var(m: re.Match) -> str:
            name = m.group(1) or m.group(2)
            if name not in env:
                raise KeyError(f"{path}:{lineno}: environment variable {name} is not set (needed by {text!r})")
            return env[name]

        text = _VAR_RE.sub(var, text)
        out.append(_CONFIG_RE.sub(lambda m: str(config_path(m.group(1))), text))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m minio3_ext.verl.recipe FILE.args [FILE.args ...]", file=sys.stderr)
        return 2
    try:
        for path in argv:
            for override in read_overrides(path):
                print(override)
    except KeyError as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 1
    except OSError as e:  # a missing or unreadable args file: name it
        print(f"error: {e.filename or path}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
