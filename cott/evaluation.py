"""Evaluation of a CoTT model on labelled examples: every answer mode's scores, the step's accuracy and coverage.

``evaluate`` is what ``python -m train.evaluate``, training's validation and the experiments all read.
"""
from __future__ import annotations

import logging
import random
import time

from tqdm.auto import tqdm

from . import metrics
from .batching import prompt_lengths
from .inference import answer_given_steps, reason
from .rectify import rectify
from .steps import MODES, final_distribution, join
from .tasks import RELATION

logger = logging.getLogger(__name__)


def known_examples(model, examples, split: str):
    """Drop (and report) examples whose answer or step the model has no label for."""
    keep = [e for e in examples if e.label in model.answer.labels and (model.step is None or all(s in model.step.labels for s in e.step or ()))]
    if len(keep) < len(examples):
        logger.warning("%s: %d of %d examples have labels unseen in training and are skipped", split, len(examples) - len(keep), len(examples))
    return keep


def evaluate(model, examples, kind: str, answer_mode: str, max_length: int, batch_size: int = 64,
             top_k: int = 3, hierarchy: dict | None = None, progress: bool = True,
             step_answers: dict | None = None, seed: int = 0, dropped: int = 0) -> dict:
    """All metrics of docs/METHOD.md for ``examples``; ``answer_mode`` names the mode the model answers with and
    ``max_length`` cuts its prompts (both the checkpoint's).

    Faithfulness: ``step_sensitivity`` is how often the final answer (in ``answer_mode``, the rectification
    weight kept at p(Î|x)) changes when the runner-up step replaces Î (needs ``top_k`` >= 2; None for a
    model that answers directly, which never reads its step); ``step2_sensitivity`` is the same for Step II
    alone. With ``step_answers`` (step label -> consistent answers), ``following_rate`` is how often the
    answer under a seeded random wrong step (neither Î nor gold) is consistent with that step.
    The reasoning monitor's accuracy at coverage ranks by p(Î|x) (baselines: their max p(y|x)), ties by
    input order. ``dropped`` (examples left out before, e.g. unknown labels) is reported as given.
    """
    if not examples:
        raise ValueError("no examples to evaluate")
    labels = model.answer.labels
    lengths = prompt_lengths(model, examples, max_length)
    order = sorted(range(len(examples)), key=lengths.__getitem__)  # shortest prompt first: less padding
    examples = [examples[i] for i in order]
    gold = [labels.index(e.label) for e in examples]
    known = model.known_steps()
    preds = {m: [] for m in MODES}
    final, step_hat, confidence, runner_final, runner_step2, gold_steps, follows = [], [], [], [], [], [], []
    rng = random.Random(seed)
    start = time.perf_counter()
    for i in tqdm(range(0, len(examples), batch_size), desc="evaluate", disable=not progress, leave=False):
        chunk = examples[i : i + batch_size]
        r = reason(model, [e.fields for e in chunk], None, max_length, top_k if known else 1)
        for m in MODES if known else ("direct",):
            preds[m] += final_distribution(r, m).argmax(-1).tolist()
        final += final_distribution(r, answer_mode).argmax(-1).tolist()
        if not known:
            confidence += r["p_answer"].max(-1).values.tolist()
            continue
        step_hat += r["step_hat"].tolist()
        confidence += r["p_step_hat"].tolist()
        if "p_answer_topk" in r:  # the runner-up step in Î's place, its weight kept at p(Î|x)
            second = r["p_answer_topk"][:, 1]
            runner_step2 += second.argmax(-1).tolist()
            runner = {"p_answer": r["p_answer"], "p_answer_step": second,
                      "p_rectified": rectify(r["p_step_hat"], second, r["p_answer"])}
            runner_final += final_distribution(runner, answer_mode).argmax(-1).tolist()
        gold_steps += [known.index(tuple(e.step)) for e in chunk]
        if step_answers:
            follows += _following(model, chunk, r["step_hat"].tolist(), step_answers, rng, max_length, batch_size)
    seconds = time.perf_counter() - start
    modes = [m for m in MODES if preds[m]]
    out = {"examples": len(examples), "dropped": dropped, "answer_mode": answer_mode, "seconds": round(seconds, 2)}
    for m in modes:
        out[m] = answer_scores(gold, preds[m], labels, kind)
    out["answer"] = answer_scores(gold, final, labels, kind)
    correct = [p == g for p, g in zip(final, gold)]
    if kind == RELATION:
        out["per_relation"] = metrics.relation_scores_per_label([labels[g] for g in gold], [labels[p] for p in final])
    back = sorted(range(len(order)), key=order.__getitem__)  # input order, so ties keep it
    in_order = ([correct[j] for j in back], [confidence[j] for j in back])
    out["coverage_signal"] = "p_step" if known else "max_direct"
    out["accuracy_at_coverage"] = metrics.accuracy_at_coverage(*in_order)
    out["coverage_curve"] = metrics.coverage_curve(*in_order)
    if known:
        out["step_accuracy"] = sum(int(s == g) for s, g in zip(step_hat, gold_steps)) / len(examples)
        if runner_final:
            out["step_sensitivity"] = None if answer_mode == "direct" else metrics.step_sensitivity(final, runner_final)
            out["step2_sensitivity"] = metrics.step_sensitivity(preds["step2"], runner_step2)
        if follows:
            out["following_rate"] = sum(follows) / len(follows)
        if hierarchy and model.num_step_slots == 1:
            out["inconsistency_rate"] = metrics.inconsistency_rate(
                [labels[p] for p in final], [known[s][0] for s in step_hat], hierarchy
            )
    return out


def _following(model, chunk, step_hat, step_answers, rng, max_length, batch_size) -> list[bool]:
    """Per example: is Step II's answer under a random wrong step (not Î, not gold) consistent with that step?"""
    known, labels = model.known_steps(), model.answer.labels
    picks = []
    for e, hat in zip(chunk, step_hat):
        pool = [j for j in range(len(known)) if j != hat and known[j] != tuple(e.step)]
        picks.append(known[rng.choice(pool)] if pool else None)
    pairs = [(e.fields, model.step_phrase(s)) for e, s in zip(chunk, picks) if s is not None]
    if not pairs:
        return []
    answers = answer_given_steps(model, pairs, max_length, batch_size).argmax(-1).tolist()
    steps = [s for s in picks if s is not None]
    return [labels[a] in step_answers.get(join(s), ()) for s, a in zip(steps, answers)]


def answer_scores(gold: list[int], pred: list[int], labels: list[str], kind: str) -> dict:
    """Classification accuracy and F1s, or relation micro P/R/F1 without ``no_relation``, from label indices."""
    if kind == RELATION:
        return metrics.relation_scores([labels[g] for g in gold], [labels[p] for p in pred])
    return metrics.classification_scores(gold, pred, len(labels))


def headline(result: dict, kind: str) -> float:
    """The one number used for model selection: accuracy, or relation micro-F1."""
    return result["answer"]["f1" if kind == RELATION else "accuracy"]


def recorded(result: dict) -> dict:
    """``result`` as a checkpoint's ``cott.json`` stores it: without the per-threshold coverage curve."""
    return {k: v for k, v in result.items() if k != "coverage_curve"}


def summary(result: dict) -> str:
    """``result`` as a few lines of text: the scores of each answer mode, the step's, per relation, at coverage."""
    lines = [f"{result['examples']} examples, answer mode {result['answer_mode']}"]
    for m in MODES:
        if m in result:
            lines.append(f"  {m:10s} " + "  ".join(f"{k} {v:.4f}" for k, v in result[m].items()))
    if result.get("dropped"):
        lines[0] += f" ({result['dropped']} left out: labels unseen in training)"
    for k in ("step_accuracy", "step_sensitivity", "step2_sensitivity", "following_rate", "inconsistency_rate"):
        if k in result:
            value = result[k]
            lines.append(f"  {k} " + ("n/a (the model answers directly)" if value is None else f"{value:.4f}"))
    for label, s in result.get("per_relation", {}).items():
        lines.append(f"  {label:12s} precision {s['precision']:.4f}  recall {s['recall']:.4f}  f1 {s['f1']:.4f}  gold {s['support']}")
    if "accuracy_at_coverage" in result:
        lines.append("  accuracy at coverage " + "  ".join(f"{c}: {a:.4f}" for c, a in result["accuracy_at_coverage"].items()))
    return "\n".join(lines)

