"""Evaluate a checkpoint: ``python -m train.evaluate --checkpoint DIR --data PATH --split test``."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from cott.checkpoint import command_line, load_checkpoint, update_config
from cott.data import sample
from cott.evaluation import evaluate, known_examples, recorded, summary
from cott.quantization import QUANTIZATIONS, quantize
from cott.tasks import checkpoint_loader, get_task

from .args import columns_arg, max_length_arg, user_errors


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (a run's best/ folder)")
    p.add_argument("--data", required=True, help="dataset path (as for training)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--task", help="task name (default: the checkpoint's)")
    p.add_argument("--columns", type=columns_arg, metavar="OURS=THEIRS,...",
                   help="jsonl task: the source's column names (default: those the checkpoint was trained with)")
    p.add_argument("--max-examples", type=int, default=None, help="evaluate a fixed random sample (seed 0) of N examples")
    p.add_argument("--max-length", type=max_length_arg, default=None,
                   help="tokens per prompt (default: the checkpoint's training max length)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--top-k", type=int, default=3, help="steps in the exact top-k marginal")
    p.add_argument("--output", help="where to write the metrics JSON (default: CHECKPOINT/metrics_NAME.json, NAME "
                                    "the --record name, else the split and, with --max-examples, the slice size)")
    p.add_argument("--record", nargs="?", const="", default=None, metavar="NAME",
                   help="also store the metrics in the checkpoint's cott.json, under NAME (default: the split)")
    p.add_argument("--quantize", choices=QUANTIZATIONS, help="the encoder in dynamic int8 (CPU), as COTT_QUANTIZE serves it")
    p.add_argument("--debug", action="store_true", help="show the traceback of a data or checkpoint error")
    args = p.parse_args(argv)
    with user_errors("python -m train.evaluate", sys.argv[1:] if argv is None else list(argv)):
        return _evaluate(p, args, argv)


def _evaluate(p, args, argv) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    device = "cuda" if torch.cuda.is_available() and not args.quantize else "cpu"
    model, config = load_checkpoint(args.checkpoint, device)
    if args.quantize:
        quantize(model, args.quantize)
    task = get_task(args.task or config.task)
    loaded = checkpoint_loader(config, args.columns, task.name)(args.data, args.split)
    kept = known_examples(model, loaded, args.split)
    dropped = len(loaded) - len(kept)
    examples = sample(kept, args.max_examples)
    if not examples:
        p.error(f"{args.data}: no {args.split} examples to evaluate (none, or none with labels the checkpoint knows)")
    max_length = args.max_length or config.max_length
    result = evaluate(model, examples, task.kind, config.answer_mode, max_length, args.batch_size, args.top_k,
                      config.hierarchy, step_answers=config.step_answers, dropped=dropped)
    result.update(split=args.split, data=str(args.data), device=device, max_length=max_length, quantize=args.quantize)
    quantised = f"_{args.quantize}" if args.quantize else ""  # a quantised reading never clobbers the float one
    name = args.record or (f"{args.split}_{args.max_examples}" if args.max_examples else args.split) + quantised
    out = Path(args.output or Path(args.checkpoint) / f"metrics_{name}.json")  # a slice never clobbers a full reading
    out.write_text(json.dumps(result, indent=2))
    if args.record is not None:
        reading = recorded(result) | {"command": command_line("train.evaluate", argv)}
        update_config(args.checkpoint, metrics={args.record or args.split + quantised: reading})
    print(summary(result))
    return result


if __name__ == "__main__":
    main()
