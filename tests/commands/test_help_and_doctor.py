"""`--help` of every command shows each option's help and default; input/output flags
are named alike; `doctor` reports per framework (issue 14, item 13)."""

import argparse
import subprocess
import sys

import pytest

from minio3_ext.cli import build_parser

MAIN = "import sys; from minio3_ext.cli import main; sys.exit(main())"


def _subparsers(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subparsers(sub, (*prefix, name))


LEAVES = [(path, p) for path, p in _subparsers(build_parser())
          if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)]


@pytest.mark.parametrize("path,parser", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_option_has_help_and_shows_its_default(path, parser):
    text = parser.format_help()
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[0] if action.option_strings else action.dest
        assert action.help, f"minio3 {' '.join(path)} {name} has no help"
        default = action.default
        if action.option_strings and action.nargs != 0 and default not in (None, [], argparse.SUPPRESS):
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
            assert f"default: {default}" in " ".join(text.split()) or f"default: {shown}" in " ".join(text.split()) \
                or "default" in action.help, f"minio3 {' '.join(path)} {name}: default {default!r} not shown"


def test_input_and_output_flags_are_named_alike():
    for path, parser in LEAVES:
        flags = {s for a in parser._actions for s in a.option_strings}
        reads = {"eval", "coldstart", "convert", "sft", "show"}
        if path[-1] in reads:
            assert "--input" in flags, path
        if path[-1] in reads | {"synth", "demo"}:
            assert "--out" in flags, path
    # the old names still work
    parser = build_parser()
    assert parser.parse_args(["data", "sft", "--trajectories", "a.jsonl", "--out", "o"]).trajectories == ["a.jsonl"]
    assert parser.parse_args(["eval", "--data", "a", "--out", "o", "--base-url", "u", "--model", "m"]).data == ["a"]


def _doctor(hide):
    code = f"import sys; sys.modules[{hide!r}] = None; from minio3_ext.cli import main; sys.exit(main(['doctor']))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def test_doctor_is_ok_for_a_trl_only_install():
    proc = _doctor("verl")  # verl cannot be imported: a TRL-only install
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[skip] verl: not installed" in proc.stdout and 'pip install -e ".[verl]"' in proc.stdout
    assert "[ok]   trl" in proc.stdout


def test_doctor_is_ok_for_a_verl_only_install():
    proc = _doctor("trl")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[skip] trl: not installed" in proc.stdout and "[ok]   verl" in proc.stdout
