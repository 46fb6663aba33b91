"""'Why this step?': the text with each word shaded by its attribution (``CoTTPipeline.explain``), on demand under a
button: one row for the step Î (Step I), one for the answer under the step (Step II), the method named."""
from __future__ import annotations

import html
from typing import Callable

import gradio as gr

from cott.attribution import METHODS

from .events import BAD_INPUT, warn
from .inputs import MAX_STEP_CHARS, clean_text
from .render import status_md
from .serving import gpu, load_pipeline, usable

CSS = """
.cott-why {display: flex; flex-direction: column; gap: 6px; font-size: 0.95em; line-height: 1.9;}
.cott-why-row {display: flex; flex-wrap: wrap; align-items: baseline; gap: 2px 4px;}
.cott-why-title {flex: 1 1 100%; font-size: 0.85em; opacity: 0.8;}
.cott-why-word {padding: 0 3px; border-radius: 3px; overflow-wrap: anywhere;}
.cott-why-note {font-size: 0.8em; opacity: 0.75;}
"""
POSITIVE, NEGATIVE = "34, 139, 34", "220, 38, 38"  # green raises the probability, red lowers it


@gpu
def explain_text(spec: str, text: str, step: str | None = None):
    """``CoTTPipeline.explain`` of one text (under ``step``, or Î), with the pipeline's default method."""
    return load_pipeline(spec).explain(text, step=step)


def _row(title: str, words: list[str], roles: list[str], scores: list[float] | None) -> str:
    """One line of shaded words; the shade is the score over the row's largest |score|."""
    if scores is None:
        return ""
    top = max((abs(s) for s in scores), default=0.0) or 1.0
    spans = []
    for word, role, score in zip(words, roles, scores):
        alpha = 0.08 + 0.62 * abs(score) / top
        color = POSITIVE if score >= 0 else NEGATIVE
        text = html.escape(word)
        if role:  # a relation's subject or object: underlined
            text = f"<u>{text}</u>"
        spans.append(f'<span class="cott-why-word" style="background: rgba({color}, {alpha:.2f})" '
                     f'title="{html.escape(f"{score:+.4f}")}">{text}</span>')
    return f'<div class="cott-why-row"><span class="cott-why-title">{title}</span>{"".join(spans)}</div>'


def explanation_html(exp, words: Callable[[str], str]) -> str:
    """The two rows of an Explanation (one for a model without a step), the method and how to read it; each step as
    ``words`` shows it (the model's ``StepSpace.display``)."""
    esc = html.escape
    rows = []
    if exp.step is not None:
        rows.append(_row(f"Why this step: <b>{esc(words(exp.step))}</b> (p(Î|x) = {exp.step_prob:.1%})",
                         exp.words, exp.roles, exp.step_scores))
        under = f" under the step <b>{esc(words(exp.answer_step))}</b>"
    else:
        under = ""
    given = "x,step" if exp.step is not None else "x"
    rows.append(_row(f"Why this answer{under}: <b>{esc(exp.answer)}</b> (p(y|{given}) = {exp.answer_prob:.1%})",
                     exp.words, exp.roles, exp.answer_scores))
    cut = "" if all(exp.seen) else " Words the model did not see (the text was cut) are left unshaded at 0."
    note = (f'<div class="cott-why-note">Method: <b>{esc(exp.method)}</b>, {esc(METHODS[exp.method])}. '
            f"Green words raise the probability, red words lower it; darker is stronger.{cut}</div>")
    return f'<div class="cott-why">{"".join(rows)}{note}</div>'


def explain_section(models: dict, model, text, step=None, api_name: str = "explain") -> None:
    """A button and the shaded text it fills, for ``text`` under Î, or under ``step`` when given (a component)."""
    label = "Why this step and answer? (word attributions)" if step is None else "Why, under this step?"
    button = gr.Button(label, size="sm", elem_id=f"{api_name}-button")
    status = gr.Markdown()
    shown = gr.HTML(elem_id=api_name)

    def run(name, text, step_text=None):
        try:
            m = usable(models, name)
            text, notices = clean_text(text)
            if step_text is not None and str(step_text).strip():
                step_text, more = clean_text(step_text, MAX_STEP_CHARS, "step")
                notices += more
            else:
                step_text = None
            exp = explain_text(m.spec, text, step_text)
        except BAD_INPUT as err:
            return warn(err), ""
        return status_md(notices=notices), explanation_html(exp, m.pipe.step_space.display)

    inputs = [model, text] + ([step] if step is not None else [])
    button.click(run, inputs, [status, shown], api_name=api_name)
