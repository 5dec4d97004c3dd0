"""CONTRIBUTING.md's "one rule, one place" table names each rule's owner by its dotted
name: every name imports (the table cannot name a function that is gone or moved), and
the table covers every rule of the loop (issue 20)."""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Rules of the loop the table must name an owner for (a word of the rule column).
RULES = ("tags", "prompt", "parsing", "cropping", "termination", "masking math", "conversation building")


def _table() -> list[tuple[str, list[str]]]:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = text.split("## One rule, one place", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("rule", "---"):
            rows.append((cells[0], re.findall(r"`([^`]+)`", cells[1])))
    return rows


def test_every_owner_in_the_table_is_a_dotted_name_that_imports():
    rows = _table()
    assert len(rows) >= 20
    missing = []
    for rule, names in rows:
        assert names, f"row {rule!r} names no owner"
        for name in names:
            assert name.startswith("minio3_ext."), f"row {rule!r}: {name!r} is not a full dotted name"
            try:
                pkgutil.resolve_name(name)
            except (ImportError, AttributeError) as e:
                missing.append(f"{rule}: {name} ({e})")
    assert not missing, missing


def test_the_table_covers_every_rule_of_the_loop():
    rules = " ".join(rule for rule, _ in _table())
    assert [r for r in RULES if r not in rules] == []


def test_a_name_that_is_gone_fails():
    try:
        pkgutil.resolve_name("minio3_ext.core.dialect.Dialect.has_action")  # removed dead code
    except AttributeError:
        return
    raise AssertionError("a removed name resolved")
