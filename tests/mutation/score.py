"""Print the mutation score of the last mutmut run (run from the folder holding mutants/, as tests/mutation/run does).

Score = killed / (tested - equivalent): mutants listed in equivalent.txt (beside this file, one name a line, then
the reason) change no behaviour a user can see and are left out of the denominator. A listed mutant that was
killed is reported: the list is out of date.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter
from pathlib import Path

from sample import exit_codes, sample

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 37: "caught by type check"}


def equivalent_mutants(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            out[name] = reason.strip()
    return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion k / n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sample", type=int, help="score only sample.py's seeded sample of this many mutants")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed")
    args = p.parse_args()
    codes = exit_codes()
    if args.sample:
        codes = {name: codes[name] for name in sample(codes, args.sample, args.seed)}
    status = {name: "not checked" if code is None else STATUS.get(code, "suspicious") for name, code in codes.items()}
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
    if args.sample:
        low, high = wilson(len(caught), relevant)
        print(f"a seeded sample of {len(status)} mutants: 95% interval of the score over all of them "
              f"{100 * low:.1f}% to {100 * high:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
