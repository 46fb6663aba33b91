"""The Gradio Blocks: one function per tab, each tab's events wired beside its components."""
from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from . import plots, render
from .about import card_markdown
from .files import read_batch_file, upload_path
from .inputs import (BATCH_MAX_ROWS, DEFAULT_THRESHOLD, MAX_STEP_CHARS, MAX_UPLOAD_BYTES, InputError, clean_text,
                     cut_notice, monitor_threshold)
from .events import BAD_INPUT, plot, warn
from .compare_tab import compare_tab
from .experiment_tab import experiment_tab
from .explain import CSS as EXPLAIN_CSS, explain_section
from .rows import predict_rows
from .serving import (CONCURRENCY, Model, configured_checkpoints, load_examples, load_models,
                      run_predict, run_sweep, usable)

CSS = """
.gradio-container {max-width: 1200px !important; margin: auto;}
.cott-plot:has(.empty), .cott-table:has(.no-rows) {display: none !important;}  /* nothing to show: no empty frame */
/* tables sized by their content: headers wrap only between words, long cells wrap, the table fits the page */
.cott-table {contain: inline-size;}  /* a wide table scrolls inside its block, never the page */
.cott-table table {width: 100% !important; table-layout: auto !important;}
.cott-table th, .cott-table td {width: auto !important; min-width: 0 !important; max-width: 10em !important;}
.cott-table td:nth-child(2) {max-width: 16em !important;}
.cott-table th *, .cott-table td *, .cott-table .body-cell * {
  font-family: var(--font) !important; font-size: var(--text-sm) !important; word-break: normal !important;
  overflow-wrap: break-word !important; white-space: normal !important;}
#about-card td:first-child {white-space: nowrap;}
.cott-warm {position: fixed !important; left: -10000px; top: 0; width: 400px; pointer-events: none;}
@media (max-width: 640px) { .gradio-container {padding: 4px !important;} }
.cott-cards {display: flex; flex-wrap: wrap; gap: 8px; margin: 4px 0;}
.cott-card {flex: 1 1 150px; border: 1px solid var(--border-color-primary, #ddd); border-radius: 8px;
            padding: 8px 12px;}
.cott-card-title {font-size: 0.85em; opacity: 0.75;}
.cott-card-value {font-size: 1.6em; font-weight: 600;}
.cott-card-note {font-size: 0.8em; opacity: 0.7;}
"""
LAUNCH_KWARGS = {"css": CSS + EXPLAIN_CSS, "max_file_size": "10mb"}  # hard cap; the handler's own limit is MAX_UPLOAD_BYTES

INTRO = """# CoTT: Chain-of-Thought Tuning, inspected
A masked language model that **first writes an intermediate step** (Step I: e.g. the domain of a question,
or the types of two entities) and **then answers given that step** (Step II). Inspect the step, see how
sure the model is of it, **replace it with your own**, or sweep every step."""

def build_demo(checkpoints: list[str] | None = None, examples: dict | str | Path | None = None,
               threshold: float = DEFAULT_THRESHOLD) -> gr.Blocks:
    """The Gradio app for these checkpoints (dirs or hub ids; default: COTT_CHECKPOINTS or assets/)."""
    models = load_models(list(checkpoints) if checkpoints else configured_checkpoints())
    example_texts = load_examples(models, examples)
    first = next((n for n, m in models.items() if m.pipe is not None), next(iter(models), None))
    init = models.get(first)
    with gr.Blocks(title="CoTT: inspect and edit a model's reasoning") as demo:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            model = gr.Radio(list(models), value=first, label="Model", scale=1, min_width=220)
            with gr.Column(scale=2, min_width=260):
                description = gr.Markdown(render.description(init) if init else "⚠ No checkpoint is configured.")
        threshold_in = gr.Slider(0, 1, value=threshold, step=0.05, label="Reasoning monitor threshold for p(Î|x)",
                                 info="Below it, the step is flagged as unsure.")
        with gr.Tabs():
            ask = ask_tab(models, example_texts, model, threshold_in, init)
            batch_tab(models, model, threshold_in)
            experiment_tab(models, model, init)
            about = about_tab(init)
            compare_tab(models)  # last: on a phone the tab bar folds it into its overflow menu, not About

        def model_info(name):
            m = models.get(name)
            samples = [[t] for t in example_texts.get(name, [])]
            unknown = render.status_md(f"Unknown model {name!r}.")
            return {
                description: render.description(m) if m else unknown,
                ask["help"]: render.input_help(m),
                ask["examples"]: gr.Dataset(samples=samples or [[""]], visible=bool(samples)),
                about["card"]: card_markdown(m) if m else unknown,
                about["answer_words"]: render.words_table(m.card.get("answer_words") if m else None),
                about["step_words"]: render.words_table(m.card.get("step_words") if m else None),
                ask["step"]: gr.Dropdown(choices=m.pipe.step_space.shown if m and m.pipe else [], value=None,
                                         info=render.step_help(m)),
            }

        outputs = [description, ask["help"], ask["examples"], about["card"], about["answer_words"], about["step_words"],
                   ask["step"]]
        model.change(model_info, model, outputs, api_name="model_info", queue=False)
        # plotly is loaded by the first chart drawn: one drawn off-screen at page load, so that the first answer's
        # charts come with its text rather than seconds after it
        gr.Plot(plot(plots.placeholder("")), show_label=False, container=False, elem_classes="cott-warm")
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    return demo


def ask_tab(models: dict[str, Model], examples: dict[str, list[str]], model, threshold_in, init: Model | None) -> dict:
    """Ask, inspect Step I and the answer, edit the step, sweep every step; returns what a model change updates."""
    first = init.name if init else None
    with gr.Tab("Ask"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                text = gr.Textbox(label="Text", lines=3, max_lines=8, placeholder="Type a text or pick an example",
                                  elem_id="text")
                ask = gr.Button("Ask", variant="primary", elem_id="ask")
                help_md = gr.Markdown(render.input_help(init))
            with gr.Column(scale=2, min_width=260):
                samples = [[t] for t in examples.get(first, [])]
                examples_ds = gr.Dataset(components=[text], samples=samples or [[""]], type="index", label="Examples",
                                         samples_per_page=10, visible=bool(samples), elem_id="examples")
        status = gr.Markdown(elem_id="status")
        with gr.Row(equal_height=False):
            with gr.Column(min_width=300):
                step_md = gr.Markdown(elem_id="step-md")
                step_plot = gr.Plot(label="Top steps", elem_id="step-plot", elem_classes="cott-plot")
            with gr.Column(min_width=300):
                answer_md = gr.Markdown(elem_id="answer-md")
                answer_plot = gr.Plot(label="Answer distributions", elem_id="answer-plot", elem_classes="cott-plot")
        with gr.Accordion("Raw output (JSON)", open=False):
            raw = gr.JSON(label="Prediction")
        explain_section(models, model, text)

        gr.Markdown("## Edit the step")
        with gr.Row(equal_height=False):
            step_in = gr.Dropdown(choices=init.pipe.step_space.shown if init and init.pipe else [], value=None,
                                  allow_custom_value=True, label="Step", info=render.step_help(init), scale=3,
                                  min_width=240, elem_id="step-input")
            inject_btn = gr.Button("Answer with this step", variant="primary", scale=1, min_width=160, elem_id="inject")
        inject_status = gr.Markdown()
        with gr.Row(equal_height=False):
            compare_md = gr.Markdown(elem_id="compare-md")
            compare_plot = gr.Plot(label="Model's step vs yours", elem_id="compare-plot", elem_classes="cott-plot")
        with gr.Accordion("Raw output (JSON)", open=False):
            inject_raw = gr.JSON(label="Injection")
        explain_section(models, model, text, step_in, api_name="explain_step")

        def fill_example(index, name):
            texts = examples.get(name, [])
            if index is None or not isinstance(index, int) or not 0 <= index < len(texts):
                return {text: gr.Textbox()}
            return {text: texts[index]}

        def predict(name, text, thr):
            thr = monitor_threshold(thr)
            try:
                m = usable(models, name)
                text, notices = clean_text(text)
                pred = run_predict(m.spec, [text])[0]
            except BAD_INPUT as err:
                return {status: warn(err), step_md: "", step_plot: None, answer_md: "", answer_plot: None,
                        step_in: gr.Dropdown(), raw: None}
            if pred.truncated:
                notices.append(cut_notice(m.pipe.max_length))
            for n in notices:
                gr.Warning(render.toast(n))
            scope = m.pipe.config.out_of_scope  # the checkpoint's out-of-scope fit, if it has one
            headline = "\n\n".join(filter(None, [render.scope_md(pred, scope), render.status_md(notices=notices)]))
            return {status: headline, step_md: render.step_section(pred, thr, scope),
                    step_plot: plot(plots.step_figure(pred, m.pipe.step_space.shown)), answer_md: render.answer_section(pred),
                    answer_plot: plot(plots.answer_figure(pred)), step_in: gr.Dropdown(choices=m.pipe.step_space.shown, value=pred.step_words),
                    raw: render.summary(name, pred, thr, notices, scope)}

        ask_outputs = [status, step_md, step_plot, answer_md, answer_plot, step_in, raw]
        examples_ds.click(fill_example, [examples_ds, model], text, api_name="example", queue=False).then(
            predict, [model, text, threshold_in], ask_outputs, api_name="predict_example")
        ask.click(predict, [model, text, threshold_in], ask_outputs, api_name="predict")
        text.submit(predict, [model, text, threshold_in], ask_outputs, api_name="predict_submit")

        def inject(name, text, step, thr):
            try:
                m = usable(models, name)
                text, notices = clean_text(text)
                step, step_notices = clean_text(step, MAX_STEP_CHARS, "step")
                notices += step_notices
                base, mine = run_predict(m.spec, [text, text], [None, step])
            except BAD_INPUT as err:
                return {inject_status: warn(err), compare_md: "", compare_plot: None, inject_raw: None}
            return {inject_status: render.status_md(notices=notices), compare_md: render.comparison_md(base, mine),
                    compare_plot: plot(plots.comparison_figure(base, mine)),
                    inject_raw: render.injection_summary(name, base, mine, notices)}

        inject_btn.click(inject, [model, text, step_in, threshold_in],
                         [inject_status, compare_md, compare_plot, inject_raw], api_name="inject")

        gr.Markdown("## Sweep every step")
        sweep_btn = gr.Button("Sweep all known steps", elem_id="sweep")
        sweep_status = gr.Markdown()
        sweep_plot = gr.Plot(label="p(y|x,I) over steps", elem_id="sweep-plot", elem_classes="cott-plot")
        sweep_table = gr.Dataframe(pd.DataFrame(columns=render.SWEEP_COLUMNS), label="Answer under each step",
                                   interactive=False, wrap=True, elem_id="sweep-table", elem_classes="cott-table")

        def sweep(name, text):
            try:
                m = usable(models, name)
                if not m.pipe.has_steps:
                    raise InputError("This model has no intermediate step to sweep.")
                text, notices = clean_text(text)
                sw = run_sweep(m.spec, text)
            except BAD_INPUT as err:
                return {sweep_status: warn(err), sweep_plot: None, sweep_table: None}
            return {sweep_status: render.status_md(notices=notices), sweep_plot: plot(plots.sweep_figure(sw, m.pipe.step_space.shown)),
                    sweep_table: render.sweep_table(sw, m.pipe.step_space.shown)}

        sweep_btn.click(sweep, [model, text], [sweep_status, sweep_plot, sweep_table], api_name="sweep")

        outputs = [status, step_md, step_plot, answer_md, answer_plot, raw, compare_md, compare_plot, inject_raw,
                   sweep_status, sweep_plot, sweep_table]

        def clear():  # a new model: the last one's texts, charts, tables and raw outputs are emptied
            return {c: "" if isinstance(c, gr.Markdown) else None for c in outputs}

        model.input(clear, None, outputs, api_name="clear", queue=False)
        model.input(lambda: "", None, text, queue=False, api_visibility="private")  # and the other model's text
    return {"help": help_md, "examples": examples_ds, "step": step_in}


def batch_tab(models: dict[str, Model], model, threshold_in) -> None:
    """Upload a file of texts; get a table of predictions with low-confidence rows flagged, and a CSV."""
    with gr.Tab("Batch"):
        gr.Markdown(
            f'Upload a **CSV** with a `text` column or a **JSON-lines** file (`{{"text": "..."}}` per line), '
            f"up to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB and {BATCH_MAX_ROWS:,} rows. Rows below the monitor "
            "threshold (step or answer) are flagged."
        )
        with gr.Row(equal_height=False):
            upload = gr.File(label="File", file_types=[".csv", ".jsonl", ".json", ".txt"], min_width=260,
                             elem_id="batch-file")
            batch_btn = gr.Button("Run batch", variant="primary", min_width=160, elem_id="batch-run")
        batch_status = gr.Markdown()
        batch_table = gr.Dataframe(pd.DataFrame(columns=render.BATCH_COLUMNS), label="Predictions", interactive=False,
                                   wrap=True, elem_id="batch-table", elem_classes="cott-table")
        batch_file = gr.File(label="Download CSV", interactive=False)

        def batch(name, file, thr, progress=gr.Progress()):
            thr = monitor_threshold(thr)
            try:
                m = usable(models, name)
                table = read_batch_file(upload_path(file))
            except (InputError, OSError) as err:
                return {batch_status: warn(err), batch_table: None, batch_file: None}
            rows = predict_rows(m.spec, [r["text"] for r in table], thr, progress)
            frame, full = render.batch_frames(rows, [{k: v for k, v in r.items() if k != "text"} for r in table])
            out = Path(tempfile.mkdtemp(prefix="cott_batch_")) / f"cott_{m.name}_predictions.csv"
            full.to_csv(out, index=False, lineterminator="\r\n")  # RFC 4180: a cell with a lone CR is quoted
            return {batch_status: render.batch_status(rows, thr), batch_table: frame, batch_file: str(out)}

        batch_btn.click(batch, [model, upload, threshold_in], [batch_status, batch_table, batch_file], api_name="batch",
                        concurrency_limit=1)


def about_tab(init: Model | None) -> dict:
    """The checkpoint's card and its verbalizers; returns what a model change updates."""
    with gr.Tab("About"):
        card = gr.Markdown(card_markdown(init) if init else "", elem_id="about-card")
        with gr.Accordion("Answer verbalizer (label → words)", open=False):
            answer_words = gr.Dataframe(render.words_table(init.card.get("answer_words") if init else None),
                                        interactive=False)
        with gr.Accordion("Step verbalizer (label → words)", open=False):
            step_words = gr.Dataframe(render.words_table(init.card.get("step_words") if init else None),
                                      interactive=False)
    return {"card": card, "answer_words": answer_words, "step_words": step_words}
