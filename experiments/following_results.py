"""Turn experiments.following records (as following_grid.sh leaves them) into lines of results/results.jsonl.

    python -m experiments.following_results --records results/following_gpu.jsonl --device "NVIDIA H200" \\
        --budget clinc150 "full train (15k), 2 epochs, H200 (step-following study)" \\
        --budget conll04 "full train (12k pairs), 1 epoch, entity markers, H200 (step-following study)" \\
        >> results/results.jsonl

A line holds the test reading of experiments.following (every grid column, plus the oracle, the injections and the
out-of-scope AUROC) under the grid's keys; the config names today's CoTT and each step-following variant.
"""
from __future__ import annotations

import argparse
import json
import shlex

BASE = "cott + MLM warm-up + soft verbalizer"


def config_name(training: dict) -> str:
    """The grid's name of a run's method: today's CoTT, or it with the step-following term's settings."""
    mu = training.get("step_following") or 0
    if not mu:
        return BASE
    warmup = training.get("step_following_warmup") or 0
    return f"{BASE} + step-following ({training.get('step_following_form', 'set')}, μ={mu:g}" + (
        f", warm-up {warmup:g})" if warmup else ")")


def result_line(record: dict, budget: str, device: str) -> dict:
    """One results.jsonl line of one following record."""
    command = record["train"]["command"]
    argv = shlex.split(command)
    task = argv[argv.index("--task") + 1]
    test = dict(record["test"])
    if "out_of_scope" in record:
        test["out_of_scope"] = record["out_of_scope"]
    return {"task": task, "config": config_name(record["test"]["training"]), "seed": record["test"]["training"]["seed"],
            "budget": budget, "budget_flags": None, "command": command, "wall_seconds": None,
            "train_seconds": record["train"].get("train_seconds"), "device": device,
            "best_val": record["train"]["best_val"], "val": {k: record["val"][k] for k in
                                                             ("answer", "random_wrong", "runner_up") if k in record["val"]},
            "test": test, "following_command": record["command"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", required=True)
    p.add_argument("--budget", nargs=2, action="append", metavar=("TASK", "NAME"), required=True)
    p.add_argument("--device", required=True)
    args = p.parse_args(argv)
    budgets = dict(args.budget)
    records = [json.loads(line) for line in open(args.records) if line.strip()]
    lines = [result_line(r, budgets[r["name"].split()[0]], args.device) for r in records]
    for line in sorted(lines, key=lambda r: (r["task"], r["config"], r["seed"])):
        print(json.dumps(line))


if __name__ == "__main__":
    main()
