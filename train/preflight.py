"""The pre-flight report of a training run: what the data holds and how the prompts fit, before any training.

Printed at the start of every ``python -m train`` run and alone by ``--check``: examples per split, labels and steps
with their counts (those that never occur in training, which evaluation drops), the step-answer table's size, the
prompt lengths of the chosen method's template and of the other methods' (median, 95th percentile, max) with the share
the max length cuts, and an estimate of an epoch's time from a few timed iterations. ``--max-length auto`` (the
default) is the smallest length that keeps ``KEEP`` of the training prompts whole, capped by the backbone's positions.
"""
from __future__ import annotations

import math
import random
import statistics
import time
from collections import Counter

import torch

from cott.steps import join
from cott.template import Template

AUTO = "auto"
KEEP = 0.99  # --max-length auto keeps this share of training prompts whole
MIN_LENGTH = 16
CUT_WARNING = 0.05  # warn when the max length cuts more prompts than this
FEW = 5  # warn about a label or step with fewer training examples than this
UNLIMITED = 1_000_000


def _positions(model) -> int:
    """Tokens the backbone can read (its position embeddings), or a large number when it does not say."""
    config = model.masked_lm().config
    return int(getattr(config, "max_position_embeddings", 0) or UNLIMITED)


def prompt_lengths(model, examples, template: Template | None = None, steps: bool = True) -> list[int]:
    """Tokens of each example's longest training prompt, uncut: Step I (masks in ``[C]``) and, for a model with a step
    and ``steps``, Step II with the gold step's words (longer when a step's words take several tokens)."""
    template = template or model.template
    tok = model.tokenizer
    out = []
    for e in examples:
        n = len(template.encode(tok, e.fields, None, UNLIMITED).input_ids)
        if steps and template.num_step_slots and e.step:
            n = max(n, len(template.encode(tok, e.fields, model.step_phrase(tuple(e.step)), UNLIMITED).input_ids))
        out.append(n)
    return out


def resolve_max_length(asked, model, train, lengths: list[int] | None = None) -> int:
    """``asked`` tokens, or for ``auto`` the smallest length keeping ``KEEP`` of the training prompts whole (at least
    ``MIN_LENGTH``), capped by the backbone's positions; ``lengths``: the training prompts', if already counted."""
    if asked != AUTO:
        return int(asked)
    lengths = sorted(prompt_lengths(model, train) if lengths is None else lengths)
    if not lengths:
        return min(128, _positions(model))
    needed = lengths[min(len(lengths) - 1, math.ceil(KEEP * len(lengths)) - 1)]
    return min(max(MIN_LENGTH, needed), _positions(model))


def length_stats(lengths: list[int], max_length: int) -> dict:
    """Median, 95th percentile and max of prompt lengths, and the share longer than ``max_length`` (cut)."""
    if not lengths:
        return {"prompts": 0}
    ordered = sorted(lengths)
    return {"prompts": len(ordered), "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)], "max": ordered[-1],
            "cut": sum(n > max_length for n in ordered) / len(ordered)}


def label_counts(splits: dict[str, list]) -> dict:
    """Per split, how many examples each answer and each step (per slot, joined by " | ") has."""
    return {name: {"labels": Counter(e.label for e in examples),
                   "steps": Counter(join(e.step) for e in examples if e.step)} for name, examples in splits.items()}


def report(task, method: str, model, splits: dict[str, list], max_length: int, asked,
           own_lengths: list[int] | None = None) -> dict:
    """The pre-flight report (a dict; ``render`` writes it as text). ``splits`` maps split names to examples, train
    first; ``asked`` is what ``--max-length`` said; ``own_lengths``: the run's training prompt lengths, if counted."""
    train = splits["train"]
    counts = label_counts(splits)
    trained = counts["train"]
    templates = {"cott": task.template, "prompt": task.prompt_template, "finetune": task.finetune_template}
    templates[method] = model.template.text  # the run's own template (--template may override the task's)
    lengths = {}
    for name, text in templates.items():  # Step II lengths need the step's words: only a model with a step has them
        if name == method and own_lengths is not None:
            lengths[name] = length_stats(own_lengths, max_length)
            continue
        template = model.template if name == method else Template(text)
        steps = name == "cott" and model.num_step_slots > 0
        lengths[name] = length_stats(prompt_lengths(model, train, template, steps=steps), max_length)
    unseen = {name: {"labels": sorted(set(c["labels"]) - set(trained["labels"])),
                     "steps": sorted(set(c["steps"]) - set(trained["steps"]))}
              for name, c in counts.items() if name != "train"}
    table = {}
    for e in train:
        if e.step:
            table.setdefault(join(e.step), set()).add(e.label)
    return {"task": task.name, "method": method, "examples": {k: len(v) for k, v in splits.items()},
            "labels": len(trained["labels"]), "steps": len(trained["steps"]),
            "label_counts": dict(trained["labels"].most_common()), "step_counts": dict(trained["steps"].most_common()),
            "unseen": unseen, "step_answer_pairs": sum(len(a) for a in table.values()),
            "max_length": max_length, "max_length_asked": asked, "positions": _positions(model), "lengths": lengths,
            "few": sorted(k for k, n in {**trained["labels"], **trained["steps"]}.items() if n < FEW)}


def epoch_seconds(model, batcher, loss, train, batch_size: int, iterations: int = 3) -> float:
    """Seconds an epoch would take here: ``iterations`` timed forward and backward passes (after one untimed), no
    optimizer step, the gradients dropped."""
    from cott.losses import cott_loss

    rng = random.Random(0)
    n = min(batch_size, len(train))
    times = []
    for i in range(iterations + 1):
        batch = batcher([train[rng.randrange(len(train))] for _ in range(n)], rng)
        start = time.perf_counter()
        value, _ = cott_loss(model, batch, loss)
        value.backward()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    return statistics.median(times) * math.ceil(len(train) / batch_size)


def warnings(rep: dict) -> list[str]:
    """What deserves the user's attention before a long run."""
    out = []
    own = rep["lengths"].get(rep["method"], {})
    if own.get("cut", 0) > CUT_WARNING:
        out.append(f"--max-length {rep['max_length']} cuts {own['cut']:.0%} of the {rep['method']} training prompts "
                   f"(median {own['median']:g}, max {own['max']} tokens): raise it, or use --max-length auto")
    if rep["few"]:
        shown = ", ".join(rep["few"][:8]) + (" ..." if len(rep["few"]) > 8 else "")
        out.append(f"{len(rep['few'])} label(s) or step(s) have fewer than {FEW} training examples: {shown}")
    for split, unseen in rep["unseen"].items():
        if unseen["labels"] or unseen["steps"]:
            out.append(f"{split}: {len(unseen['labels'])} label(s) and {len(unseen['steps'])} step(s) never occur in "
                       f"training; their examples are left out of evaluation")
    return out


def render(rep: dict, seconds: float | None = None) -> str:
    """The report as a few lines of text, warnings last."""
    ex = ", ".join(f"{k} {v:,}" for k, v in rep["examples"].items())
    asked = " (auto: 99% of training prompts whole)" if rep["max_length_asked"] == AUTO else ""
    lines = [f"pre-flight: task {rep['task']}, method {rep['method']}; examples: {ex}",
             f"  {rep['labels']} labels, {rep['steps']} steps, {rep['step_answer_pairs']} step-answer pairs in training",
             f"  max length {rep['max_length']} tokens{asked}; the backbone reads {rep['positions']:,}"]
    for name, s in rep["lengths"].items():
        if s.get("prompts"):
            mark = " (this run)" if name == rep["method"] else ""
            lines.append(f"  {name} prompts{mark}: median {s['median']:g}, 95th percentile {s['p95']}, max {s['max']} "
                         f"tokens; {s['cut']:.1%} cut at {rep['max_length']}")
    if seconds is not None:
        lines.append(f"  an epoch: about {seconds / 60:.1f} min here (from timed iterations)")
    lines += [f"  WARNING: {w}" for w in warnings(rep)]
    return "\n".join(lines)
