"""The two test lanes together hold every test exactly once.

``pytest`` runs the fast lane (``addopts`` in pyproject.toml deselects ``slow``), ``pytest -m slow``
the slow lane. This collects both and the whole suite (``-m "slow or not slow"``) and compares
the test ids: exit 1, naming the tests, when one is in neither lane or in both.

    python .ci/check_lanes.py [PROJECT_ROOT]     # default: this repository
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANES = {"fast": [], "slow": ["-m", "slow"], "all": ["-m", "slow or not slow"]}


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else ROOT
    procs = {name: subprocess.Popen([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                     *args], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, args in LANES.items()}
    ids: dict[str, Counter] = {}
    for name, proc in procs.items():
        out, err = proc.communicate()
        if proc.returncode not in (0, 5):  # 5: nothing collected (an empty lane)
            print(f"check_lanes: collecting the {name} lane failed (exit {proc.returncode}):\n{(out + err)[-3000:]}")
            return 1
        listing = out.split("\n\n", 1)[0]  # the ids, then a blank line, then warnings and the count
        ids[name] = Counter(line for line in listing.splitlines() if "::" in line)
    both = ids["fast"] + ids["slow"]
    missing = sorted(ids["all"] - both)
    twice = sorted(t for t, n in both.items() if n > 1)
    extra = sorted(both - ids["all"])
    for label, tests in (("in neither lane", missing), ("in both lanes", twice), ("not in the full suite", extra)):
        if tests:
            print(f"check_lanes: {len(tests)} test(s) {label}: " + ", ".join(tests[:20]))
    if not ids["all"]:
        print(f"check_lanes: no test collected in {root}")
    if missing or twice or extra or not ids["all"]:
        return 1
    print(f"check_lanes: fast lane {sum(ids['fast'].values())} tests + slow lane {sum(ids['slow'].values())} "
          f"= all {sum(ids['all'].values())}, each exactly once")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
