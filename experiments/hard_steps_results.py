"""The hard-step study's table: ``python -m experiments.hard_steps_results results/hard_steps_gpu.jsonl``.

Reads the records of ``experiments/hard_steps_grid.sh`` and prints, per dataset, test (or ``--split val``) micro-F1 (mean ± sd over the
seeds recorded) of both baselines and of CoTT in each answer mode, the mode each CoTT run would pick on validation,
the two one-change variants, and CoTT's step accuracy.
"""
from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict

MODES = ("direct", "step2", "rectified")
COLUMNS = (  # header, method, how a record gives its figure
    ("fine-tuning", "finetune", lambda r, s: r[s]["direct"]["f1"]),
    ("prompt tuning", "prompt", lambda r, s: r[s]["direct"]["f1"]),
    ("CoTT (rectified)", "cott", lambda r, s: r[s]["rectified"]["f1"]),
    ("same CoTT, direct p(y\\|x)", "cott", lambda r, s: r[s]["direct"]["f1"]),
    ("same CoTT, mode picked on val", "cott", lambda r, s: r[s][picked_mode(r)]["f1"]),
    ("CoTT α = 0.25", "cott-alpha", lambda r, s: r[s]["rectified"]["f1"]),
    ("CoTT λ = 0", "cott-nocc", lambda r, s: r[s]["rectified"]["f1"]),
)


def picked_mode(record: dict) -> str:
    """The answer mode with the best validation micro-F1 (ties: the first of direct, step2, rectified)."""
    return max((m for m in MODES if m in record["val"]), key=lambda m: record["val"][m]["f1"])


def cell(values: list[float]) -> str:
    if not values:
        return "–"
    mean = 100 * statistics.mean(values)
    if len(values) == 1:
        return f"{mean:.1f} (1 seed)"
    sd = 100 * statistics.stdev(values)
    return f"{mean:.1f} ± {sd:.1f}" + ("" if len(values) == 3 else f" ({len(values)} seeds)")


def table(records: list[dict], split: str = "test", order: tuple[str, ...] = ("conll04", "few", "noisy", "hard")) -> str:
    runs = defaultdict(list)
    for r in records:
        runs[r["data"], r["method"]].append(r)
    lines = ["| data | " + " | ".join(h for h, *_ in COLUMNS) + " | CoTT step accuracy |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    for data in [d for d in order if any(k[0] == d for k in runs)]:
        cells = [cell([get(r, split) for r in runs[data, method]]) for _, method, get in COLUMNS]
        steps = [r[split]["step_accuracy"] for r in runs[data, "cott"] if "step_accuracy" in r[split]]
        lines.append(f"| {data} | " + " | ".join(cells) + f" | {cell(steps)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(prog="python -m experiments.hard_steps_results", description=__doc__.split("\n\n")[0])
    p.add_argument("records", help="JSON lines written by experiments/hard_steps_grid.sh")
    p.add_argument("--split", choices=["test", "val"], default="test", help="val: the selected checkpoints' reading")
    args = p.parse_args(argv)
    with open(args.records, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    out = table(records, args.split)
    print(out)
    return out


if __name__ == "__main__":
    main()
