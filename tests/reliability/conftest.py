"""Reliability suite: bounded by default (CI), full size with ``MINIO3_FULL=1``.

Each test adds its counts to :data:`TALLY`; the terminal summary prints them, so a
run reports how many inputs were tried, not only that nothing failed.
"""

from __future__ import annotations

import os

FULL = os.environ.get("MINIO3_FULL", "") not in ("", "0")
TALLY: dict[str, str] = {}


def scale(ci: int, full: int) -> int:
    """Input count for this run: ``ci`` by default, ``full`` with ``MINIO3_FULL=1``."""
    return full if FULL else ci


def pytest_terminal_summary(terminalreporter):
    if TALLY:
        terminalreporter.section(f"reliability tally ({'full' if FULL else 'bounded'} run)")
        for name, line in TALLY.items():
            terminalreporter.write_line(f"{name}: {line}")
