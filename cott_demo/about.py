"""The About tab's checkpoint card: task, steps → answers, backbone, template, the test figures beside a baseline,
calibration when fitted, and the training arguments folded away; escaped with render's helpers."""
from __future__ import annotations

from .render import description, esc, fenced, pct

METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro F1", "precision": "precision", "recall": "recall",
                "f1": "F1"}


def command_of(record: dict) -> str:
    return str((record.get("training") or {}).get("command", "not recorded"))


def calibration_text(cal: dict | None) -> str | None:
    """How p(Î|x) was calibrated; None when it was not."""
    if not isinstance(cal, dict):
        return None
    errors = ""
    if isinstance(cal.get("raw_ece"), (int, float)) and isinstance(cal.get("scaled_ece"), (int, float)):
        errors = f" (calibration error {pct(cal['raw_ece'])} → {pct(cal['scaled_ece'])})"
    examples = cal.get("examples")
    examples = f"{examples:,}" if isinstance(examples, int) else examples
    return (f"temperature-scaled, T = {cal.get('temperature', 1):.3g}, fit on {examples} {cal.get('split')} "
            f"examples{errors}")


def steps_to_answers(m) -> str:
    answers = f"{len(m.pipe.labels):,} answers"
    if not m.pipe.steps:
        return f"no step: answers directly ({answers})"
    return f"{len(m.pipe.steps):,} steps → {answers}"


def figures(metrics) -> list[str]:
    """The test figures (else validation's) as a small table, the direct answer p(y|x) beside them as a baseline;
    a flat record of metrics as it is."""
    if not isinstance(metrics, dict) or not metrics:
        return []
    split = next((s for s in ("test", "val") if isinstance(metrics.get(s), dict)), None)
    if split is None:
        rows = [f"| {esc(k)} | {esc(f'{v:.4g}' if isinstance(v, float) else v)} |" for k, v in metrics.items()
                if not isinstance(v, (dict, list))]
        return ["", "| metric | value |", "|---|---|", *rows] if rows else []
    got = metrics[split]
    final = got.get("answer") or {}  # the scores of the answer mode the checkpoint answers in
    base = got.get("direct") or {}
    rows = [f"| {name} | **{pct(final[k])}** | {pct(base.get(k))} |" for k, name in METRIC_NAMES.items()
            if isinstance(final.get(k), (int, float))]
    if isinstance(got.get("step_accuracy"), (int, float)):
        rows.append(f"| step accuracy | {pct(got['step_accuracy'])} | — |")
    examples = f", {got['examples']:,} examples" if isinstance(got.get("examples"), int) else ""
    return ["", f"| {split}{examples} | this model | baseline: answering without the step, p(y\\|x) |",
            "|---|---|---|", *rows] if rows else []


def card_markdown(m) -> str:
    """The About tab: the checkpoint's card, and the history of its weights."""
    if m.pipe is None:
        return description(m)
    c = m.card
    facts = [("Task", f"{c.get('task')} ({c.get('kind', m.pipe.kind)})" if c.get("task") else None),
             ("Steps → answers", steps_to_answers(m)), ("Backbone", c.get("backbone")), ("Method", c.get("method")),
             ("Step confidence p(Î\\|x)", calibration_text(c.get("calibration")) if m.pipe.steps else None)]
    out = [f"## {esc(m.name)}", description(m), ""]
    out += [f"- **{k}:** {esc(v)}" for k, v in facts if v is not None]
    template = str(c.get("template", ""))
    slots = "[T] text, "
    if "[T:marked]" in template:
        slots = "[T:marked] the sentence with @ subject @ and # object # marked, [T:subj]/[T:obj] the mentions, "
    out += fenced(f"**Template** ({slots}[C] step slot, [A] answer slot):", [template])
    out += figures(c.get("metrics"))
    history = []
    training = c.get("training")
    if isinstance(training, dict) and training:
        history += fenced("**Training arguments**", [f"{k}: {v}" for k, v in training.items()])
    parent = c.get("init_from")
    if isinstance(parent, dict):  # trained further from another checkpoint: show what trained that one
        history += fenced("**Continued from** (the checkpoint this one was trained further from, and its command):",
                      [f"# {parent.get('path')}", command_of(parent)])
    ingredients = c.get("ingredients")
    if isinstance(ingredients, list):  # a weight average (experiments.soup): what trained each ingredient
        lines = [line for i in ingredients
                 for line in (f"# {i.get('path')} ({'kept' if i.get('kept') else 'left out'})", command_of(i))]
        history += fenced("**Weight average of** (the checkpoints tried, in order, and their commands):", lines)
    if history:
        out += ["", "<details><summary>How it was trained (arguments, commands)</summary>", *history, "", "</details>"]
    return "\n".join(out)
