"""Run CoTT, its ablations and the baselines under one budget and append each run to results/results.jsonl.

    python -m experiments.grid --task clinc150 --data ../shared/data/clinc150 --seeds 0 1 2 \
        --budget "--max-train-examples 1500 --epochs 2 --max-length 48 --max-eval-examples 600 --max-test-examples 1000"

Every configuration gets the same budget, data, seeds and selection on validation; test is read once per final model.
With --resume, runs already in the results file are skipped and an interrupted run continues from its saved state.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from cott.checkpoint import command_line
from train.cli import main as train_main

# name -> extra training flags; "cott w/o rectification" is the cott run read in its Step II mode.
# Earlier grids ran without the MLM warm-up and without the soft verbalizer (both now the defaults);
# those names keep their meaning through explicit flags.
NO_WARMUP, WARMUP = ["--mlm-warmup-steps", "0"], ["--mlm-warmup-steps", "100"]
WORDS, SOFT = ["--no-soft-verbalizer"], ["--soft-verbalizer"]
CONFIGS = {
    "finetune": ["--method", "finetune"],
    "prompt": ["--method", "prompt", *NO_WARMUP, *WORDS],
    "cott": ["--method", "cott", *NO_WARMUP, *WORDS],
    "cott w/o L_cc": ["--method", "cott", "--no-contrastive", *NO_WARMUP, *WORDS],
    "cott Step I only": ["--method", "cott", "--step1-only", *NO_WARMUP, *WORDS],
    "prompt + MLM warm-up": ["--method", "prompt", *WARMUP, *WORDS],
    "cott + MLM warm-up": ["--method", "cott", *WARMUP, *WORDS],
    "cott + MLM warm-up w/o L_cc": ["--method", "cott", "--no-contrastive", *WARMUP, *WORDS],
    "cott + MLM warm-up Step I only": ["--method", "cott", "--step1-only", *WARMUP, *WORDS],
    "prompt + MLM warm-up + soft verbalizer": ["--method", "prompt", *WARMUP, *SOFT],
    "cott + MLM warm-up + soft verbalizer": ["--method", "cott", *WARMUP, *SOFT],
    "cott + MLM warm-up + soft verbalizer w/o L_cc": ["--method", "cott", "--no-contrastive", *WARMUP, *SOFT],
    "cott + MLM warm-up + soft verbalizer Step I only": ["--method", "cott", "--step1-only", *WARMUP, *SOFT],
}
DEFAULT = ["finetune", "prompt + MLM warm-up + soft verbalizer", "cott + MLM warm-up + soft verbalizer",
           "cott + MLM warm-up + soft verbalizer w/o L_cc", "cott + MLM warm-up + soft verbalizer Step I only"]


def device() -> str:
    """The machine a run used, as the results file records it."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def _record(args, name: str, seed: int, command: str, result: dict, **timing) -> dict:
    """One line of the results file; ``timing`` holds wall_seconds (and, for a resumed run, its resume fields)."""
    return {
        "task": args.task, "config": name, "seed": seed, "budget": args.budget_name, "budget_flags": args.budget,
        "command": command, **timing,
        "device": device(),
        "best_val": result["best_val"], "test": dict(result["test"]),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--configs", nargs="+", default=DEFAULT, choices=list(CONFIGS))
    p.add_argument("--budget", default="", help="training flags shared by every configuration")
    p.add_argument("--budget-name", default="reduced", help="a name for the budget in the results file")
    p.add_argument("--results", default="results/results.jsonl")
    p.add_argument("--runs", default="runs/grid")
    p.add_argument("--resume", action="store_true",
                   help="skip runs already in the results file; train the others with train --resume (a saved state continues)")
    args = p.parse_args(argv)
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()  # (task, config, seed, budget flags, command) of each run in the results file
    if args.resume and out.exists():
        records = []
        for no, line in enumerate(out.read_text().splitlines(), 1):
            try:
                records += [json.loads(line)] if line.strip() else []
            except json.JSONDecodeError as err:
                p.error(f"--resume: {out} is not a results file (line {no}: {err.msg})")
        done = {tuple(r.get(k) for k in ("task", "config", "seed", "budget_flags", "command")) for r in records}
    for seed in args.seeds:
        for name in args.configs:
            run_dir = Path(args.runs) / f"{args.task}-{name.replace(' ', '_').replace('/', '')}-seed{seed}"
            argv_run = ["--task", args.task, "--data", args.data, "--seed", str(seed), "--output-dir", str(run_dir),
                        "--eval-test", *CONFIGS[name], *shlex.split(args.budget)]
            command = command_line("train", argv_run)
            if (args.task, name, seed, args.budget, command) in done:
                print(f"skipping {name!r} seed {seed}: already in {out}", file=sys.stderr)
                continue
            start = time.time()
            result = train_main(argv_run + ["--resume"] if args.resume else argv_run)  # no saved state: a fresh run
            seconds = round(time.time() - start, 1)
            if "resumed_at_iteration" in result:
                record = _record(args, name, seed, command, result, wall_seconds=None,
                                 resumed_at_iteration=result["resumed_at_iteration"], wall_seconds_after_resume=seconds)
            else:
                record = _record(args, name, seed, command, result, wall_seconds=seconds)
            with out.open("a") as f:
                f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
