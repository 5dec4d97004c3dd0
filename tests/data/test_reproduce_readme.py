"""The README's "Reproduce Mini-o3" section: every `minio3 …` command in it parses with
the real CLI, and every recipe file or script it names exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from minio3_ext.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Reproduce Mini-o3")
    return text[start:text.index("\n## ", start + 1)]


def _commands(section: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    assert blocks
    out = []
    for line in "\n".join(b.replace("\\\n", " ") for b in blocks).splitlines():
        line = line.split(" # ")[0].strip()
        if line.startswith("minio3 "):
            out.append(line)
    return out


def test_every_minio3_command_in_the_section_parses():
    commands = _commands(_section())
    assert len(commands) >= 10
    names = set()
    for command in commands:
        expanded = command.replace("${level^}", "Easy").replace("$level", "easy")
        expanded = re.sub(r"\$\{?(\w+)\}?", r"/x/\1", expanded)
        argv = shlex.split(expanded)[1:]
        args = build_parser().parse_args(argv)  # exits (SystemExit) on a bad flag or choice
        names.add(" ".join(argv[:2]))
        assert callable(args.func)
    assert {"data import-coldstart", "data convert", "eval --protocol", "judge check"} <= names


def test_recipe_files_named_in_the_section_exist():
    section = _section()
    paths = set(re.findall(r"recipes/[\w/.\-]+\.(?:sh|py|yaml|args)", section))
    assert {"recipes/verl/masked_grpo_released.args", "recipes/trl/grpo_qwen2_5_vl_7b_released.sh",
            "recipes/trl/sft_coldstart_qwen2_5_vl_7b.py"} <= paths
    for path in paths:
        assert (ROOT / path).exists(), path
    multinode = (ROOT / "recipes/verl/masked_grpo_multinode.sh").read_text()
    assert "masked_grpo_released.args" in multinode  # RELEASED=1 works on several nodes too
