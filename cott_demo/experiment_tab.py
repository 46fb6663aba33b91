"""The Experiment tab: counterfactual step injection over an uploaded file (its logic is in cott_demo.experiment),
with its progress beside the buttons, a Stop that keeps the finished rows, and a file's first rows on request."""
from __future__ import annotations

import contextlib
import functools
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from . import experiment as exp
from . import plots, render
from .files import upload_path
from .events import BAD_INPUT, plot, warn
from .inputs import MAX_UPLOAD_BYTES
from .serving import Model, run_counterfactuals, usable

SHOW_STATUS = "() => document.getElementById('experiment-status')?.scrollIntoView({block: 'center'})"
_STOPS: dict[str, threading.Event] = {}  # a session's running experiment -> its Stop, asked between chunks of rows


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or ""


@contextlib.contextmanager
def stoppable(request: gr.Request | None):
    """A Stop for this session's run, forgotten when the run ends."""
    key = _session(request)
    stop = _STOPS[key] = threading.Event()
    try:
        yield stop
    finally:
        _STOPS.pop(key, None)


def stop_run(request: gr.Request):
    """A Stop click: the session's running experiment ends after its current chunk of rows (none running: nothing)."""
    stop = _STOPS.get(_session(request))
    if stop is not None:
        stop.set()


def experiment_tab(models: dict[str, Model], model, init: Model | None) -> None:
    """Counterfactual experiments over a file: inject steps under a policy, see the rates, plots, a table and a CSV
    (the logic is in cott_demo.experiment)."""
    with gr.Tab("Experiment"):
        gr.Markdown(
            "Inject steps into every row of a file and see whether the answer **follows** them. Upload a **CSV** "
            "(header row) or **JSON-lines** file with a `text` column, an optional `label` column (the gold answer: "
            "accuracy) and an optional `step` column: under *the file's step column* it is the step injected into "
            "that row (every row needs one); under every other policy it is the row's **gold** step (*the gold "
            "step* injects it, every row needs one; *a random wrong step* never draws it). Steps are a known step's "
            f"label or words. Up to {exp.EXPERIMENT_MAX_ROWS:,} rows, {exp.MAX_INJECTIONS} injected steps per row and "
            f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
        )
        with gr.Row(equal_height=False):
            upload = gr.File(label="File", file_types=[".csv", ".jsonl", ".json", ".txt"], min_width=260,
                             elem_id="experiment-file")
            with gr.Column(min_width=260):
                policy = gr.Dropdown(exp.POLICY_CHOICES, value="random_wrong", label="Which steps to inject",
                                     elem_id="experiment-policy")
                step = gr.Dropdown(choices=init.pipe.step_space.shown if init and init.pipe else [], value=None,
                                   allow_custom_value=True, label="Fixed step (for “a fixed step for every row”)",
                                   info="A known step's label or words.", elem_id="experiment-step")
                with gr.Row():
                    seed = gr.Number(0, precision=0, label="Seed (random wrong step)", min_width=120)
                    constrained = gr.Checkbox(False, label="Answer within the step", min_width=120,
                                              info="Only answers the step allows (the checkpoint's step-answer table).")
                with gr.Row():
                    run_btn = gr.Button("Run experiment", variant="primary", elem_id="experiment-run", min_width=140)
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="experiment-stop", min_width=80)
                first_btn = gr.Button(f"Run the first {exp.EXPERIMENT_MAX_ROWS:,} rows", visible=False,
                                      elem_id="experiment-first")
                status = gr.Markdown(elem_id="experiment-status")
        cards = gr.HTML()
        with gr.Row(equal_height=False):
            heatmap = gr.Plot(label="Injected step → answer", elem_id="experiment-heatmap", elem_classes="cott-plot",
                              min_width=300)
            rates = gr.Plot(label="Rates per injected step", elem_id="experiment-rates", elem_classes="cott-plot",
                            min_width=300)
        table = gr.Dataframe(pd.DataFrame(columns=exp.RECORD_COLUMNS), label="Per injection", interactive=False, wrap=True,
                             elem_id="experiment-table", elem_classes="cott-table")
        download = gr.File(label="Download CSV (one row per injection)", interactive=False, elem_id="experiment-csv")
        outputs = [status, cards, heatmap, rates, table, download]

        def run(name, file, policy_value, step_value, seed_value, constrained_value, progress, first: bool,
                stop: threading.Event):
            started = time.perf_counter()
            try:  # every check before any model work
                m = usable(models, name)
                path = upload_path(file)
                rows, notices = exp.read_first(path) if first else (exp.read_file(path), [])
                plan = exp.make_plan(m.pipe, rows, policy_value, step_value, seed_value, bool(constrained_value), path)
            except (*BAD_INPUT, OSError) as err:
                return {status: warn(err), cards: "", heatmap: None, rates: None, table: None, download: None}

            def tick(done, total):
                end = min(done + exp.chunk_rows(plan), total)
                progress(done / total, desc=f"rows {done + 1:,}–{end:,} of {total:,}" if done < total else "done")

            records = exp.run(plan, functools.partial(run_counterfactuals, m.spec), tick, stop.is_set)
            words = m.pipe.step_space.display
            rows = exp.result_rows(records, words)
            summ = exp.summary(records)
            frame, full = render.experiment_frames(rows)
            out = Path(tempfile.mkdtemp(prefix="cott_experiment_")) / f"cott_{m.name}_{plan.policy}_experiment.csv"
            full.to_csv(out, index=False, lineterminator="\r\n")  # RFC 4180, as the Batch tab's
            policy_name = exp.POLICY_NAMES[plan.policy] + (f" ({words(plan.steps)})" if plan.policy == "fixed" else "")
            return {
                status: render.experiment_status(m.name, policy_name, len(records), summ["injections"],
                                                 time.perf_counter() - started, len(frame), notices + plan.notices,
                                                 planned=plan.rows, outside=sum(1 for r in records if r.out_of_scope)),
                cards: render.experiment_cards(summ),
                heatmap: plot(plots.injection_heatmap(exp.heatmap_data(records, m.pipe.step_answers, words),
                                                      exp.POLICY_NAMES[plan.policy])),
                rates: plot(plots.rate_bars(exp.rates_data(summ, words))),
                table: frame,
                download: str(out),
            }

        def offer_first(said):  # the file had too many rows: a button runs its first MAX_ROWS
            return gr.update(visible=render.esc(exp.FIRST_ROWS) in (said or ""))

        def run_file(name, file, policy_value, step_value, seed_value, constrained_value, request: gr.Request = None,
                     progress=gr.Progress()):
            with stoppable(request) as stop:
                return run(name, file, policy_value, step_value, seed_value, constrained_value, progress, False, stop)

        def run_first(name, file, policy_value, step_value, seed_value, constrained_value, request: gr.Request = None,
                      progress=gr.Progress()):
            with stoppable(request) as stop:
                return run(name, file, policy_value, step_value, seed_value, constrained_value, progress, True, stop)

        inputs = [model, upload, policy, step, seed, constrained]
        for button, fn, api in ((run_btn, run_file, "experiment"), (first_btn, run_first, "experiment_first")):
            button.click(fn, inputs, outputs, api_name=api, concurrency_limit=1, concurrency_id="experiment",
                         show_progress_on=[status]).then(offer_first, status, first_btn, queue=False,
                                                         api_visibility="private")
        stop_btn.click(stop_run, None, None, api_name="experiment_stop", queue=False)
        for button in (run_btn, first_btn):  # the progress shows in the status line: bring it into view
            button.click(None, None, None, js=SHOW_STATUS)

        def model_steps(name):  # another model: its steps to pick from, and the last model's results emptied
            m = models.get(name)
            return {step: gr.Dropdown(choices=m.pipe.step_space.shown if m and m.pipe else [], value=None), status: "", cards: "",
                    heatmap: None, rates: None, table: None, download: None,
                    first_btn: gr.update(visible=False)}

        model.change(model_steps, model, [step, *outputs, first_btn], queue=False, api_visibility="private")
