"""How many of a checkpoint's prompts its max length cuts: the Step I prompt (masks in ``[C]``) of each example,
encoded without a limit and compared with the checkpoint's (or a given) max length.

    python -m experiments.prompt_lengths --checkpoint assets/conll04 --data ../shared/data/conll04/derived_tacred_style --split val
"""
from __future__ import annotations

import argparse
import json

from cott.batching import prompt_lengths
from cott.checkpoint import load_checkpoint
from cott.tasks import checkpoint_loader
from train.args import max_length_arg

UNLIMITED = 1_000_000


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--max-length", type=max_length_arg, default=None, help="default: the checkpoint's training max length")
    args = p.parse_args(argv)
    model, config = load_checkpoint(args.checkpoint)
    limit = args.max_length or config.max_length
    lengths = sorted(prompt_lengths(model, checkpoint_loader(config)(args.data, args.split), UNLIMITED))
    if not lengths:
        p.error(f"{args.data}: no {args.split} examples")
    out = {"split": args.split, "examples": len(lengths), "max_length": limit,
           "cut": sum(n > limit for n in lengths) / len(lengths), "median_tokens": lengths[len(lengths) // 2],
           "max_tokens": lengths[-1]}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
