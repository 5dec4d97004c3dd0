"""`--help` of every command shows each option's help and default; input/output flags
are named alike; `doctor` reports per framework (issue 14, item 13). The doctor runs share their
fresh-interpreter probes through the ``run_doctor`` fixture (tests/conftest.py)."""

import argparse

import pytest

from minio3_ext.cli import build_parser


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


@pytest.mark.slow  # fresh-interpreter probes (verl, TRL, tools) ~25 s; the fast lane keeps check_verl's probe (tests/verl/test_registration.py)
def test_doctor_checks_both_frameworks_and_the_image_tools(run_doctor):
    code, out, err = run_doctor()
    assert code == 0, out + err
    assert "[ok]   verl" in out and "[ok]   trl" in out and "[ok]   image tools:" in out, out


@pytest.mark.slow  # its own fresh-interpreter probes (TRL, tools for TRL only) ~7 s
def test_doctor_is_ok_for_a_trl_only_install(run_doctor):
    code, out, err = run_doctor("verl")  # verl cannot be imported: a TRL-only install
    assert code == 0, out + err
    assert "[skip] verl: not installed" in out and 'pip install -e ".[verl]"' in out
    assert "[ok]   trl" in out
    assert "TRL ZoomEnvironment.zoom" in out and "verl tool YAML" not in out  # tools checked for TRL only


@pytest.mark.slow  # its own fresh-interpreter probes (verl, tools for verl only) ~7 s
def test_doctor_is_ok_for_a_verl_only_install(run_doctor):
    code, out, err = run_doctor("trl")
    assert code == 0, out + err
    assert "[skip] trl: not installed" in out and "[ok]   verl" in out
    assert "verl tool YAML" in out and "TRL ZoomEnvironment" not in out


def test_doctor_fails_when_neither_framework_is_installed(run_doctor):
    code, out, err = run_doctor("verl", "trl")
    assert code == 1 and "neither verl nor TRL is installed" in err
