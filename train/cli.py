"""Train CoTT or a baseline: ``python -m train --task clinc150 --data ../shared/data/clinc150``."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from cott.checkpoint import command_line
from cott.tasks import TASKS

from .args import columns_arg, max_length_or_auto, user_errors
from .build import METHODS, continued_settings
from .state import STATE_JSON, check_resumable, run_settings, state_folder


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    a = p.add_argument_group("data").add_argument
    a("--task", required=True, choices=list(TASKS), help="task declaration (template, label words, loader)")
    a("--data", required=True,
      help="dataset file or folder (see README: dataset formats); for the jsonl task also a Hugging Face Hub dataset id")
    a("--columns", type=columns_arg, metavar="OURS=THEIRS,...",
      help="jsonl task: the source's name of each column, e.g. text=utterance,step=domain,label=intent (a CSV, "
           "Parquet or JSON-lines file, or a Hub dataset id given as --data)")
    a("--max-train-examples", type=int, help="train on a seeded random subset (quick runs)")
    a("--max-length", type=max_length_or_auto, default="auto",
      help="tokens per prompt; only the text slot is cut. auto (default): the smallest length that keeps 99%% of the "
           "training prompts whole, capped by the backbone's positions (recorded in the checkpoint)")
    a("--check", action="store_true",
      help="print the pre-flight report (examples, labels and steps, prompt lengths and cuts, an epoch's time) and exit")

    a = p.add_argument_group("model").add_argument
    a("--model", default="minilm", help="backbone: alias (minilm), local path or hub id of a masked LM")
    a("--template", help="override the task's template")
    a("--pooling", choices=["mean", "first"], help="pooling of a label word's sub-token logits (default mean)")
    a("--soft-verbalizer", action=argparse.BooleanOptionalAction,
      help="prompt-based methods: trainable label vectors added to the label words' scores, starting at zero "
           "(default on; with frozen embeddings the label words alone cannot move; see README results)")
    a("--init-from", metavar="CHECKPOINT",
      help="continue training this checkpoint (same task and method; its backbone, template and heads) with a fresh "
           "optimizer and schedule; no MLM warm-up")
    a("--freeze-embeddings", action="store_true", help="freeze word embeddings (and the tied decoder)")
    a("--lora-r", type=int, default=0, help="train LoRA adapters of this rank instead of the whole backbone")

    a = p.add_argument_group("method and ablations").add_argument
    a("--method", default="cott", choices=METHODS, help="cott, or the baselines: prompt (single-step), finetune ([CLS] head)")
    a("--step-loss-weight", type=float, default=1.0, metavar="ALPHA",
      help="α, weight of the step loss L_I (1, the default, is the paper's objective)")
    a("--lambda-cc", type=float, default=1.0, help="λ, weight of the counterfactual contrastive loss")
    a("--tau", type=float, default=0.1, help="τ, temperature of the contrastive loss")
    a("--in-batch-negatives", action="store_true", help="other examples' Step II states are negatives too")
    a("--counterfactual-sampling", choices=["uniform", "model"], default="uniform",
      help="draw the counterfactual step uniformly from the other steps, or from the model's own p(I|x) (hard)")
    a("--step-following", type=float, default=0.0, metavar="MU",
      help="μ, weight of the step-following term: the answer under the counterfactual step should lie within the "
           "answers that step allows (the training data's step-answer table); 0 (default) is the paper's objective")
    a("--step-following-form", choices=["set", "distill"], default="set",
      help="set: -log of the answer mass inside the step; distill: cross-entropy against the model's own p(y|x) "
           "renormalised over the step's answers")
    a("--step-following-warmup", type=float, default=0.0, metavar="SHARE",
      help="share of the iterations over which μ rises linearly from 0")
    a("--no-contrastive", action="store_true", help="ablation: no counterfactual contrastive loss")
    a("--no-rectification", action="store_true", help="ablation: answer with Step II only")
    a("--step1-only", action="store_true", help="ablation: no Step II at all; answer with p(y|x)")
    # checkpoints record it as training.mlm_warmup_steps, and train.state compares it on --resume: the name stays
    a("--mlm-warmup-steps", type=int, default=100, metavar="ITERATIONS",
      help="prompt-based methods: masked-LM warm-up iterations of the MLM head on the training texts before task "
           "training (MiniLM ships no MLM head; see README results); 0 turns it off")

    a = p.add_argument_group("optimisation").add_argument
    a("--seed", type=int, default=0)
    a("--epochs", type=int, default=3)
    a("--batch-size", type=int, default=32,
      help="examples per iteration (CoTT encodes each up to 3 times); under accelerate launch, of all processes "
           "together (each trains batch-size / processes of them)")
    a("--lr", type=float, default=5e-5, help="learning rate of the backbone")
    a("--head-lr", type=float, default=5e-4, help="learning rate of the MLM head transform, projection and classifier")
    a("--weight-decay", type=float, default=0.01)
    a("--warmup-ratio", type=float, default=0.06, help="share of iterations with a rising learning rate")
    a("--max-grad-norm", type=float, default=1.0)
    a("--group-by-length", action="store_true",
      help="batch examples of similar prompt length (transformers' length-grouped order): less padding, faster "
           "iterations; a different example order than without it")

    a = p.add_argument_group("evaluation").add_argument
    a("--eval-every", type=int, default=0, metavar="ITERATIONS", help="validate every N iterations (default: every epoch)")
    a("--eval-batch-size", type=int, default=128)
    a("--max-eval-examples", type=int, help="validate on a seeded random subset")
    a("--eval-test", action="store_true", help="after training, evaluate the selected checkpoint on the test split once")
    a("--max-test-examples", type=int, help="test on the first N test examples (with --eval-test)")

    a = p.add_argument_group("checkpoints and resuming").add_argument
    a("--output-dir", help="run folder (default runs/TASK-METHOD-seedSEED)")
    a("--save-weights", default="full", choices=["full", "delta"], help="delta: only trained tensors (compact)")
    a("--save-dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    a("--save-every", type=int, default=200, metavar="ITERATIONS", help="save the resumable state every N iterations")
    a("--resume", action="store_true", help="continue from OUTPUT/state if present")
    a("--stop-after-iterations", type=int, default=0, metavar="N",
      help="stop (as if interrupted) after N iterations; continue with --resume")
    a("--stop-after-steps", dest="stop_after_iterations", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name

    a = p.add_argument_group("hardware").add_argument
    a("--mixed-precision", default="no", choices=["no", "fp16", "bf16"], help="accelerate mixed precision")
    a("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    a("--debug", action="store_true", help="show the traceback of a data, checkpoint or settings error")
    return p


def settings(argv: list[str]) -> argparse.Namespace:
    """The run's settings, final before it starts: the flags, the defaults that depend on other flags, what a
    continued checkpoint fixes (its backbone, verbalizers and warmed head) and the command, as recorded. A
    ``--resume`` under other settings than the saved state's is refused."""
    p = parser()
    args = p.parse_args(argv)
    if args.lora_r and args.save_weights == "delta":
        p.error("--lora-r saves merged full weights; use --save-weights full")
    if args.columns and args.task != "jsonl":
        p.error("--columns names the generic jsonl task's columns; drop it or use --task jsonl")
    if args.init_from and (args.template or args.lora_r):
        p.error("--init-from keeps the checkpoint's template and weights; drop --template and --lora-r")
    if args.init_from:  # a differing explicit choice is refused
        fixed = continued_settings(args.init_from, args.pooling, args.soft_verbalizer)
    else:
        fixed = {"pooling": args.pooling or "mean",
                 "soft_verbalizer": True if args.soft_verbalizer is None else args.soft_verbalizer}
    fixed["output_dir"] = args.output_dir or f"runs/{args.task}-{args.method}-seed{args.seed}"
    args = argparse.Namespace(**vars(args) | fixed, command=command_line("train", argv))
    state = state_folder(args.output_dir)
    if args.resume and (state / STATE_JSON).exists():
        check_resumable(state, run_settings(args), p.get_default)
    return args


def main(argv: list[str] | None = None) -> dict:
    """``python -m train ARGS`` as a function: train, print the result and return it (with history and test)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    with user_errors("python -m train", argv):
        args = settings(argv)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from .loop import run

        result = run(args)
    if os.environ.get("RANK", "0") == "0" and "check" not in result:  # the main process prints it; --check printed its report
        print(json.dumps({k: v for k, v in result.items() if k not in ("history", "test")}, indent=2))
    return result
