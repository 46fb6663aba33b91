"""CoTT demo: inspect a model's chain of thought (step I, then the answer) and inject a step of your own.

Run locally with ``python app.py`` (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are respected). Checkpoints
default to assets/clinc150 and assets/conll04; COTT_CHECKPOINTS="dir1,dir2,owner/hub-id" overrides them.
The app only uses the public inference API (``cott.CoTTPipeline``); it knows nothing of training.
"""
from __future__ import annotations

import csv
import html
import io
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd
import torch

import app_plots as plots
from cott import CoTTPipeline

logger = logging.getLogger("cott.app")

ROOT = Path(__file__).resolve().parent
DEFAULT_CHECKPOINTS = [str(ROOT / "assets" / "clinc150"), str(ROOT / "assets" / "conll04")]
EXAMPLES_FILE = ROOT / "assets" / "examples.json"

MAX_CHARS = 2_000  # longer texts are truncated, with a notice
MAX_STEP_CHARS = 200
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_ROWS = 1_000
BATCH_SIZE = 32
TOP_STEPS = 8
TOP_LABELS = 6
SWEEP_LABELS = 8
DEFAULT_THRESHOLD = float(os.environ.get("COTT_MONITOR_THRESHOLD", "0.5"))
CONCURRENCY = int(os.environ.get("COTT_CONCURRENCY", "4" if torch.cuda.is_available() else "2"))

try:  # ZeroGPU on Hugging Face Spaces; a no-op elsewhere.
    import spaces

    gpu = spaces.GPU
except ImportError:  # pragma: no cover - depends on the environment

    def gpu(fn):
        return fn


class InputError(ValueError):
    """Bad user input, shown to the user as it is."""


# ---- models -------------------------------------------------------------------------------------
_PIPELINES: dict[str, CoTTPipeline] = {}


@dataclass
class Model:
    """One configured checkpoint: its pipeline, or why it could not be loaded."""

    name: str
    spec: str
    pipe: CoTTPipeline | None = None
    error: str | None = None
    card: dict = field(default_factory=dict)

    @property
    def description(self) -> str:
        if self.pipe is None:
            return f"⚠ **This model could not be loaded** (`{esc(self.spec)}`): {esc(self.error or '')}"
        return esc(self.card.get("description") or self.card.get("task") or self.name)


def load_pipeline(spec: str) -> CoTTPipeline:
    """Load a checkpoint once per process (on GPU when there is one)."""
    if spec not in _PIPELINES:
        _PIPELINES[spec] = CoTTPipeline.from_pretrained(spec)
    return _PIPELINES[spec]


def configured_checkpoints() -> list[str]:
    env = os.environ.get("COTT_CHECKPOINTS", "")
    specs = [s.strip() for s in env.split(",") if s.strip()]
    return specs or DEFAULT_CHECKPOINTS


def load_models(specs: list[str]) -> dict[str, Model]:
    """Name -> Model for every spec; a broken checkpoint becomes a Model with an error, never an exception."""
    models: dict[str, Model] = {}
    for spec in specs:
        base = Path(spec.rstrip("/")).name or spec
        name, n = base, 2
        while name in models:
            name, n = f"{base} ({n})", n + 1
        try:
            pipe = load_pipeline(spec)
            models[name] = Model(name, spec, pipe, card=pipe.card())
        except Exception as err:  # any failure to load is shown in the UI, not raised
            logger.warning("could not load checkpoint %s: %s", spec, err)
            models[name] = Model(name, spec, error=f"{type(err).__name__}: {err}")
    return models


def load_examples(models: dict[str, Model], examples: dict | str | Path | None = None) -> dict[str, list[str]]:
    """Model name -> example texts, matched by the checkpoint's task (or the model's name)."""
    if examples is None or isinstance(examples, (str, Path)):
        try:
            examples = json.loads(Path(examples or EXAMPLES_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            logger.warning("no examples: %s", err)
            examples = {}
    out = {}
    for name, m in models.items():
        keys = (m.card.get("task"), name)
        out[name] = next((list(examples[k]) for k in keys if k in examples), [])
    return out


# ---- text helpers -------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|~>])")


def esc(text) -> str:
    """User or checkpoint text made safe to put inside Markdown: HTML-escaped, Markdown syntax neutralised."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def pct(p: float | None) -> str:
    return "—" if p is None else f"{p:.1%}"


def clean_text(text, limit: int = MAX_CHARS, what: str = "text") -> tuple[str, list[str]]:
    """Validate a text box: returns the text (truncated to ``limit``) and notices for the user."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputError(f"The {what} must be a string.")
    text = text.replace("\x00", "")
    if not text.strip():
        raise InputError(f"The {what} is empty: type something first (or click an example).")
    notices = []
    if len(text) > limit:
        notices.append(f"The {what} had {len(text):,} characters; only the first {limit:,} were used.")
        text = text[:limit]
    return text, notices


def status_md(error: str | None = None, notices: list[str] = ()) -> str:
    lines = [f"✖ **{esc(error)}**"] if error else []
    lines += [f"ⓘ {esc(n)}" for n in notices]
    return "\n\n".join(lines)


# ---- inference (the only functions that touch the accelerator) ----------------------------------
@gpu
def run_predict(spec: str, texts: list[str], steps: list[str | None] | None = None) -> list:
    return load_pipeline(spec)(texts, step=steps, batch_size=BATCH_SIZE)


@gpu
def run_sweep(spec: str, text: str):
    return load_pipeline(spec).sweep(text)


# ---- rendering ----------------------------------------------------------------------------------
def top_indices(probs: list[float], n: int) -> list[int]:
    return sorted(range(len(probs)), key=lambda i: -probs[i])[:n]


def monitor_md(step_prob: float | None, threshold: float) -> str:
    if step_prob is None:
        return ""
    if step_prob < threshold:
        return (
            f"> ⚠ **Reasoning monitor: low confidence in the step.** p(Î|x) = {pct(step_prob)} is below the "
            f"threshold {pct(threshold)}. The model is unsure of its own reasoning: check the sweep or edit the step."
        )
    return f"✔ Reasoning monitor: p(Î|x) = {pct(step_prob)} ≥ threshold {pct(threshold)}."


def step_section(pred, threshold: float) -> str:
    if pred.step is None:
        return "### Step I\nThis model answers directly: it has no intermediate step."
    words = esc(pred.step_words)
    tag = f" (label `{html.escape(pred.step)}`)" if pred.step_words != pred.step else ""
    return (
        f"### Step I: the model's reasoning\n"
        f"Generated step **Î = {words}**{tag} with p(Î|x) = **{pct(pred.step_prob)}**\n\n"
        f"{monitor_md(pred.step_prob, threshold)}"
    )


def answer_section(pred) -> str:
    conf = pred.p_rectified[pred.labels.index(pred.answer)]
    return (
        f"### Answer: **{esc(pred.answer)}** ({pct(conf)})\n"
        "<small>p(y|x): Step I's direct answer · p(y|x,Î): the answer given the step · "
        "p̃(y|x): rectified (the final answer)</small>"
    )


def answer_figure(pred):
    idx = top_indices(pred.p_rectified, TOP_LABELS)
    labels = [pred.labels[i] for i in idx]
    series = {"p(y|x) direct": [pred.p_answer[i] for i in idx]}
    if pred.p_answer_step is not None:
        series["p(y|x,Î) given step"] = [pred.p_answer_step[i] for i in idx]
        series["p̃(y|x) rectified"] = [pred.p_rectified[i] for i in idx]
    return plots.answer_bars(labels, series, pred.answer, title="Answer: top labels")


def step_figure(pred):
    if not pred.p_steps:
        return plots.placeholder("this model has no intermediate step")
    idx = top_indices(pred.p_steps, TOP_STEPS)
    return plots.step_bars([pred.steps[i] for i in idx], [pred.p_steps[i] for i in idx], pred.step)


def summary(name: str, pred, threshold: float, notices: list[str]) -> dict:
    conf = pred.p_rectified[pred.labels.index(pred.answer)]
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
        "notices": notices,
    }


def fenced(title: str, lines: list) -> list[str]:
    """A titled code block (markdown shows it literally, so user-made text cannot inject HTML)."""
    return ["", title, "```", *(str(line).replace("`", "'") for line in lines), "```"]


def command_of(record: dict) -> str:
    return str((record.get("training") or {}).get("command", "not recorded"))


def calibration_text(cal: dict | None) -> str:
    if not isinstance(cal, dict):
        return "as the model gives it (not calibrated)"
    return (f"temperature-scaled, T = {cal.get('temperature', 1):.3g}, fit on {cal.get('examples')} {cal.get('split')} "
            f"examples (calibration error {cal.get('ece_raw', 0):.3f} → {cal.get('ece_scaled', 0):.3f})")


def card_markdown(m: Model) -> str:
    if m.pipe is None:
        return m.description
    c = m.card
    rows = [
        ("Task", c.get("task")), ("Kind", c.get("kind")), ("Method", c.get("method")),
        ("Base model (backbone)", c.get("backbone")), ("Max length (tokens)", c.get("max_length")),
        ("Answers", len(m.pipe.labels)), ("Known steps", len(m.pipe.steps)),
        ("Step confidence p(Î\\|x)", calibration_text(c.get("calibration")) if m.pipe.steps else None),
    ]
    out = [f"## {esc(m.name)}", m.description, "", "| | |", "|---|---|"]
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


def words_table(words: dict | None) -> pd.DataFrame:
    words = words or {}
    return pd.DataFrame({"label": list(words), "words": [", ".join(w) for w in words.values()]})


def input_help(m: Model | None) -> str:
    if m is not None and m.pipe is not None and m.pipe.kind == "relation":
        return (
            "**Relation input:** mark the subject as `[[subject]]` and the object as `{{object}}`, once each, "
            "not nested, e.g. `[[Ada Lovelace]] worked with {{Charles Babbage}}.` "
            f"Texts over {MAX_CHARS:,} characters are truncated."
        )
    return f"Type a sentence or question. Texts over {MAX_CHARS:,} characters are truncated."


def step_help(m: Model | None) -> str:
    if m is not None and m.pipe is not None and m.pipe.model.num_step_slots > 1:
        return "Pick a known step or type your own words; this model's step has two parts, e.g. `person | organization`."
    return "Pick a known step or type your own words (free text is injected as it is)."


# ---- batch files --------------------------------------------------------------------------------
def read_batch_file(path: str) -> list:
    """The "text" values of an uploaded CSV, JSON-lines or JSON-array file; raises InputError."""
    size = os.path.getsize(path)
    if size > MAX_UPLOAD_BYTES:
        raise InputError(f"The file is {size / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 2**20:.0f} MB. Split it.")
    raw = Path(path).read_bytes()
    if b"\x00" in raw:
        raise InputError("The file looks binary; upload a UTF-8 CSV (column \"text\") or JSON-lines ({\"text\": ...}) file.")
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"The file is not UTF-8 text (byte {err.start}); save it as UTF-8 CSV or JSON-lines.") from None
    if not content.strip():
        raise InputError("The file is empty.")
    suffix = Path(path).suffix.lower()
    head = content.lstrip()[:1]
    if head == "[" and suffix != ".csv":
        texts = _json_array(content)
    elif suffix in (".jsonl", ".ndjson", ".json") or (suffix != ".csv" and head == "{"):
        texts = _json_lines(content)
    else:
        texts = _csv_texts(content)
    if not texts:
        raise InputError("The file has no rows.")
    if len(texts) > MAX_ROWS:
        raise InputError(f"The file has {len(texts):,} rows; the limit is {MAX_ROWS:,}. Split it.")
    return texts


def _json_array(content: str) -> list:
    try:
        data = json.loads(content)
    except ValueError as err:
        raise InputError(f"The file is not valid JSON ({err}).") from None
    if not all(isinstance(d, dict) and "text" in d for d in data):
        raise InputError('Every item of the JSON array must be an object with a "text" field.')
    return [d["text"] for d in data]


def _json_lines(content: str) -> list:
    texts = []
    for n, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise InputError(f'Line {n} is not valid JSON; each line must be like {{"text": "..."}}.') from None
        if not isinstance(row, dict) or "text" not in row:
            raise InputError(f'Line {n} has no "text" field; each line must be like {{"text": "..."}}.')
        texts.append(row["text"])
    return texts


def _csv_texts(content: str) -> list:
    try:
        reader = csv.reader(io.StringIO(content))
        header = next(reader, [])
        cols = [h.strip().lower() for h in header]
        if "text" not in cols:
            found = ", ".join(h.strip() for h in header[:8]) or "none"
            raise InputError(f'The CSV has no "text" column (found: {found}). Add a header row with a "text" column.')
        i = cols.index("text")
        return [row[i] if i < len(row) else "" for row in reader if row]
    except csv.Error as err:
        raise InputError(f"The CSV could not be read ({err}).") from None


def _safe_cell(value):
    """Neutralise spreadsheet formulas in the downloadable CSV."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def predict_rows(spec: str, texts: list[str], threshold: float, progress=None) -> list[dict]:
    """Run the pipeline over rows in batches; a bad row gets an error note instead of failing the file."""
    rows = []
    for start in range(0, len(texts), BATCH_SIZE):
        if progress is not None:
            progress(start / len(texts), desc=f"rows {start + 1}–{min(start + BATCH_SIZE, len(texts))} of {len(texts)}")
        chunk = []
        for k, t in enumerate(texts[start : start + BATCH_SIZE], start + 1):
            row = {"row": k, "text": t if isinstance(t, str) else json.dumps(t), "note": ""}
            try:
                row["text"], notes = clean_text(t)
                row["note"] = " ".join(notes)
                chunk.append(row)
            except InputError:
                row["note"] = "error: empty text"
            rows.append(row)
        try:
            preds = run_predict(spec, [r["text"] for r in chunk]) if chunk else []
        except (ValueError, TypeError):  # isolate the bad rows
            preds = []
            for r in chunk:
                try:
                    preds.append(run_predict(spec, [r["text"]])[0])
                except (ValueError, TypeError) as err:
                    preds.append(None)
                    r["note"] = f"error: {err}"
        for r, p in zip(chunk, preds):
            if p is None:
                continue
            conf = p.p_rectified[p.labels.index(p.answer)]
            flags = []
            if p.step_prob is not None and p.step_prob < threshold:
                flags.append("low step prob")
            if conf < threshold:
                flags.append("low answer confidence")
            r.update(step=p.step, step_prob=p.step_prob, answer=p.answer, confidence=conf, flag="⚠ " + ", ".join(flags) if flags else "")
    if progress is not None:
        progress(1.0, desc="done")
    return rows


SWEEP_COLUMNS = ["step", "p(step|x)", "answer under step", "p(answer|x,step)"]
BATCH_COLUMNS = ["row", "text", "step", "step_prob", "answer", "confidence", "flag", "note"]


def batch_frames(rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table shown in the app, table written to the CSV download)."""
    full = pd.DataFrame(rows).reindex(columns=BATCH_COLUMNS)
    for col in ("step_prob", "confidence"):
        full[col] = pd.to_numeric(full[col], errors="coerce").round(4)
    full = full.astype(object).where(full.notna(), "")
    shown = full.copy()
    shown["text"] = [t if len(t) <= 80 else t[:79] + "…" for t in shown["text"].astype(str)]
    return shown, full.map(_safe_cell)


# ---- the app ------------------------------------------------------------------------------------
CSS = """
.gradio-container {max-width: 1200px !important; margin: auto;}
@media (max-width: 640px) { .gradio-container {padding: 4px !important;} }
"""

INTRO = """# CoTT: Chain-of-Thought Tuning, inspected
A masked language model that **first writes an intermediate step** (Step I: e.g. the domain of a question,
or the types of two entities) and **then answers given that step** (Step II). Inspect the step, see how
sure the model is of it, **replace it with your own**, or sweep every step."""


class Handlers:
    """The app's event handlers. Bad input never raises: it comes back as a status message."""

    def __init__(self, models: dict[str, Model], examples: dict[str, list[str]]):
        self.models = models
        self.examples = examples
        self.names = list(models)
        self.first = next((n for n in self.names if models[n].pipe is not None), self.names[0] if self.names else None)

    def get(self, name) -> Model:
        if name not in self.models:
            raise InputError(f"Unknown model {name!r}; choose one of: {', '.join(self.names)}.")
        m = self.models[name]
        if m.pipe is None:
            raise InputError(f"The model {name!r} could not be loaded ({m.error}). Choose another one.")
        return m

    def model_info(self, name):
        m = self.models.get(name)
        samples = [[t] for t in self.examples.get(name, [])]
        about = card_markdown(m) if m else status_md(f"Unknown model {name!r}.")
        card = m.card if m else {}
        steps = m.pipe.steps if m and m.pipe else []
        return (
            m.description if m else status_md(f"Unknown model {name!r}."),
            input_help(m),
            gr.Dataset(samples=samples or [[""]], visible=bool(samples)),
            about,
            words_table(card.get("answer_words")),
            words_table(card.get("step_words")),
            gr.Dropdown(choices=steps, value=None, info=step_help(m)),
        )

    def fill_example(self, index, name):
        texts = self.examples.get(name, [])
        if index is None or not isinstance(index, int) or not 0 <= index < len(texts):
            return gr.Textbox()
        return texts[index]

    def predict(self, name, text, thr):
        thr = DEFAULT_THRESHOLD if thr is None else float(thr)
        try:
            m = self.get(name)
            text, notices = clean_text(text)
            pred = run_predict(m.spec, [text])[0]
        except (InputError, ValueError, TypeError) as err:
            gr.Warning(str(err))
            return status_md(str(err)), "", None, "", None, gr.Dropdown(), None
        for n in notices:
            gr.Warning(n)
        return (
            status_md(notices=notices),
            step_section(pred, thr),
            step_figure(pred),
            answer_section(pred),
            answer_figure(pred),
            gr.Dropdown(choices=pred.steps, value=pred.step),
            summary(name, pred, thr, notices),
        )

    def inject(self, name, text, step, thr):
        try:
            m = self.get(name)
            text, notices = clean_text(text)
            step, step_notices = clean_text(step, MAX_STEP_CHARS, "step")
            notices += step_notices
            base, mine = run_predict(m.spec, [text, text], [None, step])
        except (InputError, ValueError, TypeError) as err:
            gr.Warning(str(err))
            return status_md(str(err)), "", None, None
        return status_md(notices=notices), comparison_md(base, mine), comparison_figure(base, mine), {
            "model": name,
            "model_step": base.step, "model_answer": _argmax(base), "model_answer_prob": max(base.p_answer_step),
            "injected_step": mine.step, "injected_step_words": mine.step_words, "injected_step_prob": mine.step_prob,
            "answer": mine.answer, "answer_prob": max(mine.p_answer_step), "notices": notices,
        }

    def sweep(self, name, text):
        try:
            m = self.get(name)
            if not m.pipe.has_steps:
                raise InputError("This model has no intermediate step to sweep.")
            text, notices = clean_text(text)
            sw = run_sweep(m.spec, text)
        except (InputError, ValueError, TypeError) as err:
            gr.Warning(str(err))
            return status_md(str(err)), None, None
        order = top_indices(sw.p_steps, len(sw.steps))
        cols = sorted(range(len(sw.labels)), key=lambda j: -max(r[j] for r in sw.probs))[:SWEEP_LABELS]
        fig = plots.sweep_heatmap(
            [sw.steps[i] for i in order], [sw.labels[j] for j in cols],
            [[sw.probs[i][j] for j in cols] for i in order], chosen=sw.steps[order[0]],
        )
        answers = sw.answers()
        table = pd.DataFrame(
            [(sw.steps[i], round(sw.p_steps[i], 4), answers[i][1], round(answers[i][2], 4)) for i in order],
            columns=SWEEP_COLUMNS,
        )
        return status_md(notices=notices), fig, table

    def batch(self, name, file, thr, progress=gr.Progress()):
        thr = DEFAULT_THRESHOLD if thr is None else float(thr)
        try:
            m = self.get(name)
            if not file:
                raise InputError('Upload a CSV (column "text") or JSON-lines ({"text": ...}) file first.')
            path = file if isinstance(file, str) else getattr(file, "name", None) or file.get("path")
            texts = read_batch_file(path)
        except (InputError, OSError) as err:
            gr.Warning(str(err))
            return status_md(str(err)), None, None
        rows = predict_rows(m.spec, texts, thr, progress)
        shown, full = batch_frames(rows)
        out = Path(tempfile.mkdtemp(prefix="cott_batch_")) / f"cott_{m.name}_predictions.csv"
        full.to_csv(out, index=False, lineterminator="\r\n")  # RFC 4180: a cell with a lone CR is quoted
        flagged = sum(1 for r in rows if r.get("flag"))
        errors = sum(1 for r in rows if str(r.get("note", "")).startswith("error"))
        msg = f"Processed {len(rows):,} rows: {flagged:,} flagged (below {pct(thr)}), {errors:,} with errors."
        return f"✔ {esc(msg)}", shown, str(out)



def build_demo(checkpoints: list[str] | None = None, examples: dict | str | Path | None = None,
               threshold: float = DEFAULT_THRESHOLD) -> gr.Blocks:
    """The Gradio app for these checkpoints (dirs or hub ids; default: COTT_CHECKPOINTS or assets/)."""
    models = load_models(list(checkpoints) if checkpoints else configured_checkpoints())
    h = Handlers(models, load_examples(models, examples))
    names, first, example_texts = h.names, h.first, h.examples

    # -- layout --
    init = models.get(first)
    with gr.Blocks(title="CoTT: inspect and edit a model's reasoning") as demo:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            model = gr.Radio(names, value=first, label="Model", scale=1, min_width=220)
            with gr.Column(scale=2, min_width=260):
                description = gr.Markdown(init.description if init else "⚠ No checkpoint is configured.")
        threshold_in = gr.Slider(0, 1, value=threshold, step=0.05, label="Reasoning monitor threshold for p(Î|x)",
                                 info="Below it, the step is flagged as unsure.")
        with gr.Tabs():
            with gr.Tab("Ask"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=300):
                        text = gr.Textbox(label="Text", lines=3, max_lines=8, placeholder="Type a text or pick an example",
                                          elem_id="text")
                        help_md = gr.Markdown(input_help(init))
                    with gr.Column(scale=2, min_width=260):
                        samples = [[t] for t in example_texts.get(first, [])]
                        examples_ds = gr.Dataset(components=[text], samples=samples or [[""]], type="index", label="Examples",
                                                 samples_per_page=10, visible=bool(samples), elem_id="examples")
                        ask = gr.Button("Ask", variant="primary", elem_id="ask")
                status = gr.Markdown(elem_id="status")
                with gr.Row(equal_height=False):
                    with gr.Column(min_width=300):
                        step_md = gr.Markdown()
                        step_plot = gr.Plot(label="Top steps", elem_id="step-plot")
                    with gr.Column(min_width=300):
                        answer_md = gr.Markdown()
                        answer_plot = gr.Plot(label="Answer distributions", elem_id="answer-plot")
                with gr.Accordion("Raw output (JSON)", open=False):
                    raw = gr.JSON(label="Prediction")
                gr.Markdown("## Edit the step")
                with gr.Row(equal_height=False):
                    step_in = gr.Dropdown(choices=init.pipe.steps if init and init.pipe else [], value=None,
                                          allow_custom_value=True, label="Step", info=step_help(init), scale=3,
                                          min_width=240, elem_id="step-input")
                    inject_btn = gr.Button("Answer with this step", variant="primary", scale=1, min_width=160, elem_id="inject")
                inject_status = gr.Markdown()
                with gr.Row(equal_height=False):
                    compare_md = gr.Markdown()
                    compare_plot = gr.Plot(label="Model's step vs yours", elem_id="compare-plot")
                with gr.Accordion("Raw output (JSON)", open=False):
                    inject_raw = gr.JSON(label="Injection")
                gr.Markdown("## Sweep every step")
                sweep_btn = gr.Button("Sweep all known steps", elem_id="sweep")
                sweep_status = gr.Markdown()
                sweep_plot = gr.Plot(label="p(y|x,I) over steps", elem_id="sweep-plot")
                sweep_table = gr.Dataframe(pd.DataFrame(columns=SWEEP_COLUMNS), label="Answer under each step",
                                           interactive=False, wrap=True)
            with gr.Tab("Batch"):
                gr.Markdown(
                    f'Upload a **CSV** with a `text` column or a **JSON-lines** file (`{{"text": "..."}}` per line), '
                    f"up to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB and {MAX_ROWS:,} rows. Rows below the monitor "
                    "threshold (step or answer) are flagged."
                )
                with gr.Row(equal_height=False):
                    upload = gr.File(label="File", file_types=[".csv", ".jsonl", ".json", ".txt"], min_width=260)
                    batch_btn = gr.Button("Run batch", variant="primary", min_width=160)
                batch_status = gr.Markdown()
                batch_table = gr.Dataframe(pd.DataFrame(columns=BATCH_COLUMNS), label="Predictions", interactive=False, wrap=True)
                batch_file = gr.File(label="Download CSV", interactive=False)
            with gr.Tab("About"):
                about = gr.Markdown(card_markdown(init) if init else "")
                with gr.Accordion("Answer verbalizer (label → words)", open=False):
                    answer_words = gr.Dataframe(words_table(init.card.get("answer_words") if init else None), interactive=False)
                with gr.Accordion("Step verbalizer (label → words)", open=False):
                    step_words = gr.Dataframe(words_table(init.card.get("step_words") if init else None), interactive=False)

        # -- events --
        ask_outputs = [status, step_md, step_plot, answer_md, answer_plot, step_in, raw]
        model.change(h.model_info, model, [description, help_md, examples_ds, about, answer_words, step_words, step_in],
                     api_name="model_info", queue=False)
        model.input(lambda: ("", "", None, "", None, None, "", None, None, "", None, None),
                    None, [status, step_md, step_plot, answer_md, answer_plot, raw, compare_md, compare_plot, inject_raw,
                           sweep_status, sweep_plot, sweep_table], api_name="clear", queue=False)
        examples_ds.click(h.fill_example, [examples_ds, model], text, api_name="example", queue=False).then(
            h.predict, [model, text, threshold_in], ask_outputs, api_name="predict_example")
        ask.click(h.predict, [model, text, threshold_in], ask_outputs, api_name="predict")
        text.submit(h.predict, [model, text, threshold_in], ask_outputs, api_name="predict_submit")
        inject_btn.click(h.inject, [model, text, step_in, threshold_in], [inject_status, compare_md, compare_plot, inject_raw],
                         api_name="inject")
        sweep_btn.click(h.sweep, [model, text], [sweep_status, sweep_plot, sweep_table], api_name="sweep")
        batch_btn.click(h.batch, [model, upload, threshold_in], [batch_status, batch_table, batch_file], api_name="batch",
                        concurrency_limit=1)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    return demo


def _argmax(pred) -> str:
    p = pred.p_answer_step
    return pred.labels[max(range(len(p)), key=p.__getitem__)]


def comparison_md(base, mine) -> str:
    b_ans, m_ans = _argmax(base), _argmax(mine)
    b_p = base.p_answer_step[base.labels.index(b_ans)]
    m_p = mine.p_answer_step[mine.labels.index(m_ans)]
    mine_prob = pct(mine.step_prob) if mine.step_prob is not None else "— (free text, not a known step)"
    changed = "⇄ **The answer changed.**" if b_ans != m_ans else "= The answer did not change."
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


def _short(text: str, limit: int = 30) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def comparison_figure(base, mine):
    idx = list(dict.fromkeys(top_indices(base.p_answer_step, 3) + top_indices(mine.p_answer_step, 3)))
    labels = [base.labels[i] for i in idx]
    series = {
        f"under Î: {base.step_words}": [base.p_answer_step[i] for i in idx],
        f"under yours: {_short(mine.step_words)}": [mine.p_answer_step[i] for i in idx],
    }
    return plots.answer_bars(labels, series, _argmax(mine), title="p(y|x,step): model's step vs yours")


LAUNCH_KWARGS = {"css": CSS, "max_file_size": "10mb"}  # hard cap; the handler's own limit is MAX_UPLOAD_BYTES


def main():
    logging.basicConfig(level=logging.INFO)
    demo = build_demo()
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **LAUNCH_KWARGS,
    )


if __name__ == "__main__":
    main()
