"""Markdown, text and tables for the demo; every piece of user or checkpoint text is escaped here."""
from __future__ import annotations

import html
import re

import pandas as pd

from .experiment import RECORD_COLUMNS as EXPERIMENT_COLUMNS
from .inputs import MAX_CHARS

TOP_LABELS = 6
SWEEP_COLUMNS = ["step", "p(step|x)", "answer under step", "p(answer|x,step)"]
BATCH_COLUMNS = ["row", "text", "step", "step_prob", "answer", "confidence", "flag", "note"]
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|~>])")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# ---- escaping ---------------------------------------------------------------------------------
def esc(text) -> str:
    """User or checkpoint text made safe to put inside Markdown: HTML-escaped, Markdown syntax neutralised."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def esc_html(text) -> str:
    """Text made safe for plotly labels, which interpret a few HTML tags."""
    return html.escape(str(text))


def toast(text) -> str:
    """Text for a Gradio toast (gr.Warning), which renders HTML."""
    return html.escape(str(text))


def safe_cell(value):
    """Neutralise spreadsheet formulas in the downloadable CSV."""
    if isinstance(value, str) and value[:1] in _FORMULA_START:
        return "'" + value
    return value


def fenced(title: str, lines: list) -> list[str]:
    """A titled code block (markdown shows it literally, so user-made text cannot inject HTML)."""
    return ["", title, "```", *(str(line).replace("`", "'") for line in lines), "```"]


# ---- small helpers ----------------------------------------------------------------------------
def pct(p: float | None) -> str:
    return "—" if p is None else f"{p:.1%}"


def top_indices(probs: list[float], n: int) -> list[int]:
    return sorted(range(len(probs)), key=lambda i: -probs[i])[:n]


def answer_under_step(pred) -> str:
    """The argmax of p(y|x,step): the answer Step II gives under the prediction's step."""
    p = pred.p_answer_step
    return pred.labels[max(range(len(p)), key=p.__getitem__)]


def status_md(error: str | None = None, notices: list[str] = ()) -> str:
    lines = [f"✖ **{esc(error)}**"] if error else []
    lines += [f"**Note:** {esc(n)}" for n in notices]
    return "\n\n".join(lines)


# ---- a prediction -----------------------------------------------------------------------------
def monitor_md(step_prob: float | None, threshold: float, out_of_scope: bool | None = None) -> str:
    """The p(Î|x) monitor's line: a warning below the threshold; no tick for an input flagged out of scope."""
    if step_prob is None:
        return ""
    if step_prob < threshold:
        return (
            f"> ⚠ **Reasoning monitor: low confidence in the step.** p(Î|x) = {pct(step_prob)} is below the "
            f"threshold {pct(threshold)}. The model is unsure of its own reasoning: check the sweep or edit the step."
        )
    if out_of_scope:
        return (f"Reasoning monitor: p(Î|x) = {pct(step_prob)} ≥ threshold {pct(threshold)}, but the input looks "
                "out of scope (above): the step is a guess too.")
    return f"✔ Reasoning monitor: p(Î|x) = {pct(step_prob)} ≥ threshold {pct(threshold)}."


SCOPE_SIGNALS = {"neg_entropy": "minus the entropy of p̃(y|x)", "p_step": "p(Î|x)", "max_rectified": "max p̃(y|x)",
                 "max_direct": "max p(y|x)", "margin": "the margin between p̃'s two best answers"}
OUT_OF_SCOPE = "This doesn't look like anything the model was trained on"


def scope_md(pred, fit: dict | None) -> str:
    """The out-of-scope headline when the checkpoint's fitted signal flags the input (else ""): the verdict in words,
    the number in a folded detail (HTML, escaped)."""
    if not pred.out_of_scope:
        return ""
    fit = fit if isinstance(fit, dict) else {}
    signal = SCOPE_SIGNALS.get(fit.get("signal"), str(fit.get("signal", "the checkpoint's signal")))
    threshold = fit.get("threshold")
    where = f", fitted on {fit['fit_on']}" if fit.get("fit_on") else ""
    below = f" is below the threshold {threshold:.3f}{where}" if isinstance(threshold, (int, float)) else ""
    detail = html.escape(f"Its in-scope score ({signal}) = {pred.scope_score:.3f}{below}.")
    return (f"### ⚠ {OUT_OF_SCOPE}\nThe model answers anyway, so its answer below is only a guess.\n\n"
            f"<details><summary>How the monitor decided</summary>{detail}</details>")


def step_section(pred, threshold: float, scope: dict | None = None) -> str:
    """Step I and the reasoning monitor (no tick for an out-of-scope input: ``scope_md`` says why, above)."""
    if pred.step is None:
        return "### Step I\nThis model answers directly: it has no intermediate step."
    words = esc(pred.step_words)
    tag = f" (label `{html.escape(pred.step)}`)" if pred.step_words != pred.step else ""
    return (
        f"### Step I: the model's reasoning\n"
        f"Generated step **Î = {words}**{tag} with p(Î|x) = **{pct(pred.step_prob)}**\n\n"
        f"{monitor_md(pred.step_prob, threshold, pred.out_of_scope)}"
    )


def answer_section(pred) -> str:
    """The answer's heading: "The model's guess" for an input flagged out of scope."""
    conf = (pred.p_final or pred.p_rectified)[pred.labels.index(pred.answer)]
    head = "The model's guess" if pred.out_of_scope else "Answer"
    return (
        f"### {head}: **{esc(pred.answer)}** ({pct(conf)})\n"
        "<small>p(y|x): Step I's direct answer · p(y|x,Î): the answer given the step · "
        "p̃(y|x): rectified (the final answer)</small>"
    )


def summary(name: str, pred, threshold: float, notices: list[str], scope: dict | None = None) -> dict:
    """The Ask tab's raw output (JSON); ``scope``: the checkpoint's out-of-scope fit, if any."""
    conf = (pred.p_final or pred.p_rectified)[pred.labels.index(pred.answer)]
    return {
        "model": name,
        "step": pred.step,
        "step_words": pred.step_words,
        "step_prob": pred.step_prob,
        "low_step_prob": pred.step_prob is not None and pred.step_prob < threshold,
        "threshold": threshold,
        "answer": pred.answer,
        "confidence": conf,
        "top": [[label, p] for label, p in pred.top(TOP_LABELS)],
        "out_of_scope": pred.out_of_scope,
        "scope_score": pred.scope_score,
        "scope_threshold": scope.get("threshold") if isinstance(scope, dict) else None,
        "notices": notices,
    }


# ---- an injected step -------------------------------------------------------------------------
def comparison_md(base, mine) -> str:
    b_ans, m_ans = answer_under_step(base), answer_under_step(mine)
    b_p = base.p_answer_step[base.labels.index(b_ans)]
    m_p = mine.p_answer_step[mine.labels.index(m_ans)]
    mine_prob = pct(mine.step_prob) if mine.step_prob is not None else "— (free text, not a known step)"
    changed = "⇄ **The answer changed.**" if b_ans != m_ans else "The answer did not change."
    return "\n".join([
        "| | model's step Î | your step |",
        "|---|---|---|",
        f"| step | {esc(base.step_words)} | {esc(mine.step_words)} |",
        f"| p(step\\|x) | {pct(base.step_prob)} | {mine_prob} |",
        f"| answer under the step | **{esc(b_ans)}** | **{esc(m_ans)}** |",
        f"| p(answer\\|x,step) | {pct(b_p)} | {pct(m_p)} |",
        "",
        changed + f" The model's final (rectified) answer is {esc(base.answer)}.",
    ])


def injection_summary(name: str, base, mine, notices: list[str]) -> dict:
    """The injection's raw output (JSON)."""
    return {
        "model": name,
        "model_step": base.step, "model_answer": answer_under_step(base), "model_answer_prob": max(base.p_answer_step),
        "injected_step": mine.step, "injected_step_words": mine.step_words, "injected_step_prob": mine.step_prob,
        "answer": mine.answer, "answer_prob": max(mine.p_answer_step), "notices": notices,
    }


# ---- tables -----------------------------------------------------------------------------------
def sweep_table(sw, shown: list[str]) -> pd.DataFrame:
    """The answer under every known step (``shown``: in words, following ``sw.steps``), the most likely step first."""
    answers = sw.answers()
    order = top_indices(sw.p_steps, len(sw.steps))
    return pd.DataFrame([(shown[i], pct(sw.p_steps[i]), answers[i][1], pct(answers[i][2])) for i in order],
                        columns=SWEEP_COLUMNS)


def short(value, limit: int = 80) -> str:
    """A cell shortened for the table shown in the app (the CSV keeps it whole)."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _frames(rows: list[dict], columns: list[str], probs: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the table shown: long cells shortened, probabilities as percentages; the CSV's: numbers rounded, formulas
    neutralised)."""
    full = pd.DataFrame(rows).reindex(columns=columns)
    for col in probs:
        full[col] = pd.to_numeric(full[col], errors="coerce").round(4)
    full = full.astype(object).where(full.notna(), "")
    shown = full.map(lambda v: short(v) if isinstance(v, str) else v)
    for col in probs:
        shown[col] = [pct(v) if v != "" else "" for v in shown[col]]
    return shown, full.map(safe_cell)


def batch_frames(rows: list[dict], extras: list[dict] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table shown in the app, table written to the CSV download): our columns, then ``extras``, each row's own
    columns from the file (one of our names gets " (file)")."""
    extras = extras or [{} for _ in rows]
    names = list(dict.fromkeys(k for e in extras for k in e))
    rename = {k: f"{k} (file)" if k in BATCH_COLUMNS else k for k in names}
    merged = [{**r, **{rename[k]: v for k, v in e.items()}} for r, e in zip(rows, extras)]
    return _frames(merged, BATCH_COLUMNS + [rename[k] for k in names], ("step_prob", "confidence"))


def batch_status(rows: list[dict], threshold: float) -> str:
    flagged = sum(1 for r in rows if r.get("flag"))
    outside = sum(1 for r in rows if "out of scope" in str(r.get("flag", "")))
    errors = sum(1 for r in rows if str(r.get("note", "")).startswith("error"))
    why = f"below {pct(threshold)}" + (", or out of scope" if outside else "")
    scope = (f"{outside:,} out of scope (unlike anything the model was trained on: their answers are guesses), "
             if outside else "")
    msg = f"Processed {len(rows):,} rows: {flagged:,} flagged ({why}), {scope}{errors:,} with errors."
    return f"✔ {esc(msg)}"


# ---- an experiment ----------------------------------------------------------------------------
EXPERIMENT_SHOWN = 500  # rows of the table shown in the app; the CSV has them all


def experiment_frames(rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the first EXPERIMENT_SHOWN rows, shown in the app: empty columns left out, headers in words; every row, for
    the CSV, its formulas neutralised)."""
    shown, full = _frames(rows, EXPERIMENT_COLUMNS, ("model_step_prob", "answer_prob"))
    shown = shown.head(EXPERIMENT_SHOWN)
    shown = shown[[c for c in shown.columns if (shown[c] != "").any()]]
    return shown.rename(columns=lambda c: c.replace("_", " ")), full


def _card(title: str, value: str, note: str = "") -> str:
    note = f'<div class="cott-card-note">{html.escape(note)}</div>' if note else ""
    return (f'<div class="cott-card"><div class="cott-card-title">{html.escape(title)}</div>'
            f'<div class="cott-card-value">{html.escape(value)}</div>{note}</div>')


def experiment_cards(summ: dict) -> str:
    """The summary cards (HTML; every piece of text escaped): inputs, injections, flip rate, following rate, and the
    accuracies when the file has labels."""
    cards = [_card("Inputs", f"{summ['inputs']:,}", "rows of the file"),
             _card("Injections", f"{summ['injections']:,}", "injected steps in all"),
             _card("Flip rate", pct(summ["flip_rate"]), "the answer changed under the injected step")]
    if summ["following_rate"] is None:
        cards.append(_card("Step-following rate", "—", "no step-answer table in this checkpoint"))
    else:
        cards.append(_card("Step-following rate", pct(summ["following_rate"]),
                           f"the answer is one the step allows ({summ['following_over']:,} injections)"))
    if summ["accuracy_over"]:
        cards.append(_card("Accuracy under the injected steps", pct(summ["accuracy_under_injected"]),
                           f"{summ['accuracy_over']:,} injections into rows with a label"))
        cards.append(_card("Model's accuracy", pct(summ["accuracy_model"]), "with its own steps"))
    return f'<div class="cott-cards" id="experiment-cards">{"".join(cards)}</div>'


def experiment_status(model: str, policy: str, rows: int, injections: int, seconds: float, shown: int,
                      notices: list[str] = (), planned: int | None = None, outside: int = 0) -> str:
    """The run's summary line; ``planned`` > ``rows``: stopped early, after ``rows`` of ``planned`` rows."""
    msg = (f"{model}: {policy}, {rows:,} rows, {injections:,} injections in {seconds:.1f} s. The table shows "
           + (f"the first {shown:,} of {injections:,} rows; the CSV has them all." if shown < injections
              else "every row; so does the CSV."))
    stopped = planned is not None and planned > rows
    if stopped:
        msg = f"Stopped after {rows:,} of {planned:,} rows: the results below are of those rows. " + msg
    if outside:
        msg += (f" {outside:,} of the rows look out of scope (unlike anything the model was trained on): their "
                "answers are guesses.")
    return "\n\n".join([f"{'■' if stopped else '✔'} {esc(msg)}"] + [f"**Note:** {esc(n)}" for n in notices])


def words_table(words: dict | None) -> pd.DataFrame:
    words = words or {}
    return pd.DataFrame({"label": list(words), "words": [", ".join(w) for w in words.values()]})


# ---- a model ----------------------------------------------------------------------------------
def description(m) -> str:
    if m.pipe is None:
        return f"⚠ **This model could not be loaded** (`{esc(m.spec)}`): {esc(m.error or '')}"
    return esc(m.card.get("description") or m.card.get("task") or m.name)


def input_help(m) -> str:
    if m is not None and m.pipe is not None and m.pipe.kind == "relation":
        return (
            "**Relation input:** mark the subject as `[[subject]]` and the object as `{{object}}`, once each, "
            "not nested, e.g. `[[Ada Lovelace]] worked with {{Charles Babbage}}.` "
            f"Texts over {MAX_CHARS:,} characters are truncated."
        )
    return f"Type a sentence or question. Texts over {MAX_CHARS:,} characters are truncated."


def step_help(m) -> str:
    if m is not None and m.pipe is not None and m.pipe.num_step_slots > 1:
        return "Pick a known step or type your own words; this model's step has two parts, e.g. `person | organization`."
    return "Pick a known step or type your own words (free text is injected as it is)."
