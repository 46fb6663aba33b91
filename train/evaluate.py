"""Evaluate a checkpoint: ``python -m train.evaluate --checkpoint DIR --data PATH --split test``."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cott import metrics
from cott.batching import by_prompt_length
from cott.checkpoint import CONFIG, load_checkpoint
from cott.data import sample
from cott.inference import reason
from cott.tasks import RELATION, get_task

logger = logging.getLogger(__name__)

MODES = ("direct", "step2", "rectified", "marginal")  # p(y|x), p(y|x,Î), p~(y|x), top-k marginal


def known_examples(model, examples, split: str):
    """Drop (and report) examples whose answer or step the model has no label for."""
    keep = [e for e in examples if e.label in model.answer.labels and (model.step is None or all(s in model.step.labels for s in e.step or ()))]
    if len(keep) < len(examples):
        logger.warning("%s: %d of %d examples have labels unseen in training and are skipped", split, len(examples) - len(keep), len(examples))
    return keep


def evaluate(model, examples, kind: str, answer_mode: str, max_length: int = 128, batch_size: int = 64,
             top_k: int = 3, hierarchy: dict | None = None, progress: bool = True) -> dict:
    """All metrics of METHOD.md for ``examples``; ``answer_mode`` names the mode the model answers with."""
    if not examples:
        raise ValueError("no examples to evaluate")
    labels = model.answer.labels
    examples = by_prompt_length(model, examples, max_length)
    gold = [labels.index(e.label) for e in examples]
    known = model.known_steps()
    preds = {m: [] for m in MODES}
    step_hat, p_step_hat, runner_up_answer, gold_steps = [], [], [], []
    start = time.perf_counter()
    for i in tqdm(range(0, len(examples), batch_size), desc="evaluate", disable=not progress, leave=False):
        chunk = examples[i : i + batch_size]
        r = reason(model, [e.fields for e in chunk], None, max_length, top_k if known else 1)
        preds["direct"] += r["p_answer"].argmax(-1).tolist()
        if not known:
            continue
        preds["step2"] += r["p_answer_step"].argmax(-1).tolist()
        preds["rectified"] += r["p_rectified"].argmax(-1).tolist()
        preds["marginal"] += (r["p_marginal"] if "p_marginal" in r else r["p_rectified"]).argmax(-1).tolist()
        step_hat += r["step_hat"].tolist()
        p_step_hat += r["p_step_hat"].tolist()
        if "p_answer_topk" in r:
            runner_up_answer += r["p_answer_topk"][:, 1].argmax(-1).tolist()
        gold_steps += [known.index(tuple(e.step)) for e in chunk]
    seconds = time.perf_counter() - start
    modes = [m for m in MODES if preds[m]]
    out = {"examples": len(examples), "answer_mode": answer_mode, "seconds": round(seconds, 2)}
    for m in modes:
        out[m] = answer_scores(gold, preds[m], labels, kind)
    final = preds[answer_mode if answer_mode in modes else "direct"]
    out["answer"] = out[answer_mode if answer_mode in modes else "direct"]
    correct = [p == g for p, g in zip(final, gold)]
    if kind == RELATION:
        out["per_relation"] = metrics.relation_scores_per_label([labels[g] for g in gold], [labels[p] for p in final])
    if known:
        out["step_accuracy"] = sum(int(s == g) for s, g in zip(step_hat, gold_steps)) / len(examples)
        out["accuracy_at_coverage"] = metrics.accuracy_at_coverage(correct, p_step_hat)
        out["coverage_curve"] = metrics.coverage_curve(correct, p_step_hat)
        if runner_up_answer:
            out["step_sensitivity"] = metrics.step_sensitivity(preds["step2"], runner_up_answer)
        if hierarchy and model.num_step_slots == 1:
            out["inconsistency_rate"] = metrics.inconsistency_rate(
                [labels[p] for p in final], [known[s][0] for s in step_hat], hierarchy
            )
    return out


def answer_scores(gold: list[int], pred: list[int], labels: list[str], kind: str) -> dict:
    """Classification accuracy and F1s, or relation micro P/R/F1 without ``no_relation``, from label indices."""
    if kind == RELATION:
        return metrics.relation_scores([labels[g] for g in gold], [labels[p] for p in pred])
    return metrics.classification_scores(gold, pred, len(labels))


def headline(result: dict, kind: str) -> float:
    """The one number used for model selection: accuracy, or relation micro-F1."""
    return result["answer"]["f1" if kind == RELATION else "accuracy"]


def max_length_arg(value: str) -> int:
    """argparse type of ``--max-length``: a positive number of tokens (0 must not fall back to a default)."""
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be a positive number of tokens")
    return n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (a run's best/ folder)")
    p.add_argument("--data", required=True, help="dataset path (as for training)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--task", help="task name (default: the checkpoint's)")
    p.add_argument("--max-examples", type=int, default=None, help="evaluate a fixed random sample (seed 0) of N examples")
    p.add_argument("--max-length", type=max_length_arg, default=None,
                   help="tokens per prompt (default: the checkpoint's training max length)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--top-k", type=int, default=3, help="steps in the exact top-k marginal")
    p.add_argument("--output", help="where to write the metrics JSON (default: CHECKPOINT/metrics_NAME.json, NAME "
                                    "the --record name, else the split and, with --max-examples, the slice size)")
    p.add_argument("--record", nargs="?", const="", default=None, metavar="NAME",
                   help="also store the metrics in the checkpoint's cott.json, under NAME (default: the split)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, config = load_checkpoint(args.checkpoint, device)
    task = get_task(args.task or config["task"])
    examples = known_examples(model, task.loader(args.data, args.split), args.split)
    examples = sample(examples, args.max_examples)
    if not examples:
        p.error(f"{args.data}: no {args.split} examples to evaluate (none, or none with labels the checkpoint knows)")
    max_length = args.max_length or config.get("max_length", 128)
    result = evaluate(model, examples, task.kind, config.get("answer_mode", "rectified"), max_length,
                      args.batch_size, args.top_k, config.get("hierarchy"))
    result.update(split=args.split, data=str(args.data), device=device, max_length=max_length)
    name = args.record or (f"{args.split}_{args.max_examples}" if args.max_examples else args.split)
    out = Path(args.output or Path(args.checkpoint) / f"metrics_{name}.json")  # a slice never clobbers a full reading
    out.write_text(json.dumps(result, indent=2))
    if args.record is not None:
        cfg_file = Path(args.checkpoint) / CONFIG
        cfg = json.loads(cfg_file.read_text())
        recorded = {k: v for k, v in result.items() if k != "coverage_curve"}
        recorded["command"] = "python -m train.evaluate " + " ".join(argv if argv is not None else sys.argv[1:])
        cfg.setdefault("metrics", {})[args.record or args.split] = recorded
        cfg_file.write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
    print(summary(result, task.kind))
    return result


def summary(result: dict, kind: str) -> str:
    lines = [f"{result['examples']} examples, answer mode {result['answer_mode']}"]
    for m in MODES:
        if m in result:
            lines.append(f"  {m:10s} " + "  ".join(f"{k} {v:.4f}" for k, v in result[m].items()))
    for k in ("step_accuracy", "step_sensitivity", "inconsistency_rate"):
        if k in result:
            lines.append(f"  {k} {result[k]:.4f}")
    for label, s in result.get("per_relation", {}).items():
        lines.append(f"  {label:12s} precision {s['precision']:.4f}  recall {s['recall']:.4f}  f1 {s['f1']:.4f}  gold {s['support']}")
    if "accuracy_at_coverage" in result:
        lines.append("  accuracy at coverage " + "  ".join(f"{c}: {a:.4f}" for c, a in result["accuracy_at_coverage"].items()))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
