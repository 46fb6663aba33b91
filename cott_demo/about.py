"""The About tab's checkpoint card (task, template, metrics, history), escaped with render's helpers."""
from __future__ import annotations

import json

from .render import description, esc, fenced


def command_of(record: dict) -> str:
    return str((record.get("training") or {}).get("command", "not recorded"))


def calibration_text(cal: dict | None) -> str:
    if not isinstance(cal, dict):
        return "as the model gives it (not calibrated)"
    return (f"temperature-scaled, T = {cal.get('temperature', 1):.3g}, fit on {cal.get('examples')} {cal.get('split')} "
            f"examples (calibration error {cal.get('ece_raw', 0):.3f} → {cal.get('ece_scaled', 0):.3f})")


def card_markdown(m) -> str:
    """The About tab: the checkpoint's card, and the history of its weights."""
    if m.pipe is None:
        return description(m)
    c = m.card
    rows = [
        ("Task", c.get("task")), ("Kind", c.get("kind")), ("Method", c.get("method")),
        ("Base model (backbone)", c.get("backbone")), ("Max length (tokens)", c.get("max_length")),
        ("Answers", len(m.pipe.labels)), ("Known steps", len(m.pipe.steps)),
        ("Step confidence p(Î\\|x)", calibration_text(c.get("calibration")) if m.pipe.steps else None),
    ]
    out = [f"## {esc(m.name)}", description(m), "", "| | |", "|---|---|"]
    out += [f"| {k} | {esc(v)} |" for k, v in rows if v is not None]
    template = str(c.get("template", ""))
    slots = "[T] text, "
    if "[T:marked]" in template:
        slots = "[T:marked] the sentence with @ subject @ and # object # marked, [T:subj]/[T:obj] the mentions, "
    out += fenced(f"**Template** ({slots}[C] step slot, [A] answer slot):", [template])
    for title, key in (("Metrics", "metrics"), ("Training", "training")):
        value = c.get(key)
        out += ["", f"**{title}**"]
        if isinstance(value, dict) and value:
            out += ["", "| | |", "|---|---|"]
            for k, v in value.items():
                v = f"{v:.4g}" if isinstance(v, float) else json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v
                out.append(f"| {esc(k)} | {esc(v)} |")
        else:
            out.append(": none recorded" if not value else f": {esc(value)}")
    parent = c.get("init_from")
    if isinstance(parent, dict):  # trained further from another checkpoint: show what trained that one
        out += fenced("**Continued from** (the checkpoint this one was trained further from, and its command):",
                      [f"# {parent.get('path')}", command_of(parent)])
    ingredients = c.get("ingredients")
    if isinstance(ingredients, list):  # a weight average (experiments.soup): what trained each ingredient
        lines = [line for i in ingredients
                 for line in (f"# {i.get('path')} ({'kept' if i.get('kept') else 'left out'})", command_of(i))]
        out += fenced("**Weight average of** (the checkpoints tried, in order, and their commands):", lines)
    return "\n".join(out)
