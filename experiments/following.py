"""Does the answer follow the step? One record per checkpoint and split, for today's CoTT and step-following runs.

    python -m experiments.following --checkpoints runs/a/best runs/b/best --data ../shared/data/clinc150 \\
        --splits val test --output results/following.jsonl [--name NAME ...] [--max-val-examples N] [--out-of-scope]

Per split: accuracy of every answer mode, accuracy at 90% coverage, step sensitivity (``cott.evaluation``); the
answer under the gold step (the oracle); flip and step-following rates of Step II's answer under a seeded random
wrong step and under the runner-up step (``cott.counterfactual``, unconstrained), and, for relations, how often
that answer is ``no_relation`` (which every type pair allows) and the following rate without it. CLINC150: the
out-of-scope AUROC of the signal picked on validation (``experiments.out_of_scope``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from cott import counterfactual
from cott.checkpoint import command_line, load_checkpoint
from cott.data import sample
from cott.evaluation import evaluate, known_examples, recorded
from cott.tasks import RELATION, checkpoint_loader, get_task

from .step_oracle import step_oracle

NEGATIVE = "no_relation"
POLICIES = ("random_wrong", "runner_up")


def injected(model, examples, policy: str, step_answers: dict, answer_mode: str, max_length: int) -> dict:
    """Flip and following rates of the answers under ``policy``'s injected steps (plus no_relation shares)."""
    records = counterfactual.run(model, [e.fields for e in examples], policy,
                                 gold_steps=[tuple(e.step) for e in examples], gold_labels=[e.label for e in examples],
                                 step_answers=step_answers, answer_mode=answer_mode, max_length=max_length,
                                 batch_size=128)
    out = {k: v for k, v in counterfactual.summarise(records).items() if k != "per_step"}
    answers = [(inj.answer, inj.follows) for rec in records for inj in rec.injections if inj.follows is not None]
    if answers:
        out["negative_rate"] = sum(a == NEGATIVE for a, _ in answers) / len(answers)
        out["following_rate_without_negative"] = sum(f and a != NEGATIVE for a, f in answers) / len(answers)
    return out


def read(path: str, data: str, split: str, max_examples: int | None, device: str) -> dict:
    """The record of one checkpoint on one split."""
    model, config = load_checkpoint(path, device)
    task = get_task(config.task)
    max_length, mode = config.max_length, config.answer_mode
    examples = sample(known_examples(model, checkpoint_loader(config)(data, split), split), max_examples)
    table = config.step_answers
    with torch.no_grad():
        reading = recorded(evaluate(model, examples, task.kind, mode, max_length, 128, hierarchy=config.hierarchy,
                                    step_answers=table, progress=False))
        reading["oracle"] = step_oracle(model, examples, task.kind, max_length)
        for policy in POLICIES:
            reading[policy] = injected(model, examples, policy, table, mode, max_length)
    reading["training"] = {k: config.training.get(k) for k in
                           ("seed", "step_following", "step_following_form", "step_following_warmup", "lambda_cc")}
    reading["score"] = "f1" if task.kind == RELATION else "accuracy"
    return reading


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="+", required=True)
    p.add_argument("--name", nargs="+", help="a name per checkpoint (default: its path)")
    p.add_argument("--data", required=True)
    p.add_argument("--splits", nargs="+", default=["val", "test"], choices=["val", "test"])
    p.add_argument("--max-val-examples", type=int, help="validation: a seed-0 sample of N examples (test is read whole)")
    p.add_argument("--out-of-scope", action="store_true", help="CLINC150: also the out-of-scope AUROC")
    p.add_argument("--output", required=True, help="JSON lines file, appended to")
    args = p.parse_args(argv)
    if args.name and len(args.name) != len(args.checkpoints):
        p.error("--name needs one name per checkpoint")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(args.checkpoints):
        record = {"name": args.name[i] if args.name else path, "checkpoint": path,
                  "command": command_line("experiments.following", argv)}
        for split in args.splits:
            record[split] = read(path, args.data, split, args.max_val_examples if split == "val" else None, device)
        if args.out_of_scope:
            from .out_of_scope import read_checkpoint

            oos = read_checkpoint(path, args.data, device)
            best = oos["signals"][oos["best_on_val"]]
            record["out_of_scope"] = {"signal": oos["best_on_val"], "val_auroc": best["val"]["auroc"],
                                      "test_auroc": best["test"]["auroc"]}
        with open(args.output, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps({k: record[k] for k in ("name",)} | {
            s: {"acc": record[s]["answer"], "follow": record[s]["random_wrong"]["following_rate"]} for s in args.splits}))


if __name__ == "__main__":
    main()
