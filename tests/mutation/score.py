"""Print the mutation score of the last mutmut run (run from the folder holding mutants/, as tests/mutation/run does).

Score = killed / (tested - equivalent): mutants listed in equivalent.txt (beside this file, one name a line, then
the reason) change no behaviour a user can see and are left out of the denominator. A listed mutant that was
killed is reported: the list is out of date.
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 37: "caught by type check"}


def equivalent_mutants(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            out[name] = reason.strip()
    return out


def main() -> int:
    status = {}
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            status[name] = "not checked" if code is None else STATUS.get(code, "suspicious")
    if not status:
        print("no mutmut results here: run tests/mutation/run first")
        return 1
    equivalent = equivalent_mutants(Path(__file__).with_name("equivalent.txt"))
    counts = Counter(status.values())
    caught = {n for n, s in status.items() if s in ("killed", "timeout", "caught by type check")}
    unchecked = sorted(n for n, s in status.items() if s == "not checked")
    undecided = sorted(n for n, s in status.items()
                       if s not in ("killed", "timeout", "caught by type check", "skipped", "not checked"))
    survivors = [n for n in undecided if n not in equivalent]
    stale = sorted(n for n in equivalent if n in caught)
    per_file = Counter(re.split(r"\.x[_ǁ]", n)[0] for n in survivors)  # cott.files.x_cell__mutmut_6: cott.files
    print(f"mutants: {len(status)}  " + "  ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    for name in survivors:
        print(f"  survived ({status[name]}): {name}")
    if stale:
        print("listed as equivalent but killed (remove from equivalent.txt): " + ", ".join(stale))
    listed = [n for n in undecided if n in equivalent]
    relevant = len(status) - counts.get("skipped", 0) - len(unchecked) - len(listed)
    if unchecked:
        print(f"not checked yet (left out of the score): {len(unchecked)}")
    print(f"equivalent or harmless (tests/mutation/equivalent.txt): {len(listed)}")
    if per_file:
        print("survivors by module: " + ", ".join(f"{k} {v}" for k, v in sorted(per_file.items())))
    print(f"score: {len(caught)} killed of {relevant} non-equivalent mutants = {100 * len(caught) / max(relevant, 1):.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
