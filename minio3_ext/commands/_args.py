"""What every ``minio3`` command shares: range-checked argparse types, the help
formatter that shows defaults, and the checks that turn bad input into one line.

A command raises :class:`UserError` (or lets an ``argparse`` type reject a value);
:func:`minio3_ext.cli.main` prints ``minio3 <command>: <message>`` and exits 2, with
no traceback. Messages name the flag (``--max-images``), the file, or the row.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "UserError", "HelpFormatter", "int_range", "float_range", "positive_int", "positive_float", "json_object",
    "check_inputs", "check_out_file", "check_out_dir", "alias",
]


class UserError(Exception):
    """Bad input: printed as one line, exit status 2 (``exit_code`` to override)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def add_image_root_args(parser: argparse.ArgumentParser, default: str) -> None:
    """``--image-root`` and the one flag that lets image paths leave it (the same in every command)."""
    from minio3_ext.core.paths import ALLOW_FLAG, ALLOW_HELP

    parser.add_argument("--image-root", default=None,
                        help=f"folder relative image paths are under; every image must lie inside it (default: {default})")
    parser.add_argument(ALLOW_FLAG, dest="allow_outside_root", action="store_true", help=ALLOW_HELP)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's layout and appends ``(default: ...)`` to every option's help."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if "%(default)" in help_text or "default" in help_text.lower():
            return help_text
        if action.default is argparse.SUPPRESS or action.option_strings == [] or action.nargs == 0:
            return help_text
        if action.default is None:
            return help_text
        return help_text + " (default: %(default)s)"


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer within [lo, hi]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if lo is not None and value < lo:
            raise argparse.ArgumentTypeError(f"must be at least {lo}, got {value}")
        if hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"must be at most {hi}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def float_range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number within [lo, hi] (``lo_open``: strictly above lo)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if lo is not None and (value <= lo if lo_open else value < lo):
            raise argparse.ArgumentTypeError(f"must be {'above' if lo_open else 'at least'} {lo:g}, got {value:g}")
        if hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"must be at most {hi:g}, got {value:g}")
        return value

    parse.__name__ = "number"
    return parse


positive_int = int_range(1)
positive_float = float_range(0.0, lo_open=True)


def json_object(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object (``'{"top_p": 0.9}'``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e.msg} at column {e.colno}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__}: {text!r}")
    return value


def alias(parser: argparse.ArgumentParser | Any, new: str, *old: str, **kwargs: Any) -> argparse.Action:
    """``add_argument(new, *old)``: old flag names keep working, help shows all."""
    return parser.add_argument(new, *old, **kwargs)


def _check_utf8(path: Path, flag: str, always: bool = False) -> None:
    if not always and path.suffix not in (".jsonl", ".json", ".tsv"):
        return
    decoder = __import__("codecs").getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                raise UserError(f"{flag} {path}: not UTF-8 text (byte {offset + e.start})") from None
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise UserError(f"{flag} {path}: not UTF-8 text (truncated character at the end)") from None


def check_inputs(paths: Iterable[str | os.PathLike[str]], flag: str, *, files_only: bool = False,
                 suffixes: Sequence[str] | None = None, text: bool = False) -> list[Path]:
    """Each input exists, is readable, not empty, valid UTF-8 when it is text (``text``:
    every file must be UTF-8 text, whatever its suffix)."""
    out = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise UserError(f"{flag} {p}: no such file" + ("" if files_only else " or folder"))
        if p.is_dir():
            if files_only:
                raise UserError(f"{flag} {p}: is a folder; expected a file")
        else:
            if suffixes is not None and p.suffix not in suffixes:
                raise UserError(f"{flag} {p}: expected a {'/'.join(suffixes)} file, got {p.suffix or 'no suffix'!r}")
            if not os.access(p, os.R_OK):
                raise UserError(f"{flag} {p}: not readable")
            if p.stat().st_size == 0:
                raise UserError(f"{flag} {p}: file is empty")
            _check_utf8(p, flag, always=text)
        out.append(p)
    return out


def check_out_file(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """An output file path: not a folder, its parent a folder (or creatable)."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{flag} {p}: is a folder; expected a file path")
    return _check_parents(p, flag)


def check_out_dir(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """An output folder path: not an existing file, nor under one."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{flag} {p}: is a file; expected a folder")
    return _check_parents(p, flag)


def _check_parents(p: Path, flag: str) -> Path:
    """The nearest existing parent of ``p`` is a writable folder."""
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{flag} {p}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK):
                raise UserError(f"{flag} {p}: cannot write in {parent}")
            break
    return p
