"""Name a seeded random sample of the mutants mutmut generated (run from the folder holding mutants/).

    python sample.py N [--seed S] [--unkilled]

The sample is drawn from every mutant's name, sorted, so the same code and seed give the same sample; --unkilled
prints only those of the sample without a result yet or that survived (what tests/mutation/run --sample passes to
mutmut: survivors are tested again, against tests written since).
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


UNKILLED = (None, 0, 5, 33)  # mutmut's exit codes: not tested yet, survived, no tests reach it


def exit_codes() -> dict[str, int | None]:
    """Every generated mutant's name and mutmut's exit code for it (None: not tested yet)."""
    out: dict[str, int | None] = {}
    for meta in Path("mutants").rglob("*.py.meta"):
        out.update(json.loads(meta.read_text())["exit_code_by_key"])
    return out


def sample(names, n: int, seed: int = 0) -> list[str]:
    """``n`` names drawn without replacement (all of them when ``n`` is not smaller), in sorted order."""
    names = sorted(names)
    return sorted(random.Random(seed).sample(names, n)) if n < len(names) else names


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("n", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unkilled", action="store_true")
    args = p.parse_args()
    codes = exit_codes()
    for name in sample(codes, args.n, args.seed):
        if not args.unkilled or codes[name] in UNKILLED:
            print(name)


if __name__ == "__main__":
    main()
