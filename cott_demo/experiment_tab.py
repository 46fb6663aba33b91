"""The Experiment tab: counterfactual step injection over an uploaded file (its logic is in cott_demo.experiment)."""
from __future__ import annotations

import functools
import tempfile
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
                step = gr.Dropdown(choices=init.pipe.steps if init and init.pipe else [], value=None,
                                   allow_custom_value=True, label="Fixed step (for “a fixed step for every row”)",
                                   info="A known step's label or words.", elem_id="experiment-step")
                with gr.Row():
                    seed = gr.Number(0, precision=0, label="Seed (random wrong step)", min_width=120)
                    constrained = gr.Checkbox(False, label="Answer within the step", min_width=120,
                                              info="Only answers the step allows (the checkpoint's step-answer table).")
                run_btn = gr.Button("Run experiment", variant="primary", elem_id="experiment-run")
        status = gr.Markdown(elem_id="experiment-status")
        cards = gr.HTML()
        with gr.Row(equal_height=False):
            heatmap = gr.Plot(label="Injected step → answer", elem_id="experiment-heatmap", min_width=300)
            rates = gr.Plot(label="Rates per injected step", elem_id="experiment-rates", min_width=300)
        table = gr.Dataframe(pd.DataFrame(columns=exp.RECORD_COLUMNS), label="Per injection", interactive=False, wrap=True)
        download = gr.File(label="Download CSV (one row per injection)", interactive=False, elem_id="experiment-csv")

        def run(name, file, policy_value, step_value, seed_value, constrained_value, progress=gr.Progress()):
            started = time.perf_counter()
            try:  # every check before any model work
                m = usable(models, name)
                path = upload_path(file)
                plan = exp.make_plan(m.pipe, exp.read_file(path), policy_value, step_value, seed_value,
                                     bool(constrained_value), path)
            except (*BAD_INPUT, OSError) as err:
                return {status: warn(err), cards: "", heatmap: None, rates: None, table: None, download: None}

            def tick(done, total):
                end = min(done + exp.CHUNK, total)
                progress(done / total, desc=f"rows {done + 1:,}–{end:,} of {total:,}" if done < total else "done")

            records = exp.run(plan, functools.partial(run_counterfactuals, m.spec), tick)
            rows = exp.result_rows(records)
            summ = exp.summary(records)
            shown, full = render.experiment_frames(rows)
            out = Path(tempfile.mkdtemp(prefix="cott_experiment_")) / f"cott_{m.name}_{plan.policy}_experiment.csv"
            full.to_csv(out, index=False, lineterminator="\r\n")  # RFC 4180, as the Batch tab's
            policy_name = exp.POLICY_NAMES[plan.policy] + (f" ({plan.steps})" if plan.policy == "fixed" else "")
            return {
                status: render.experiment_status(m.name, policy_name, plan.rows, summ["injections"],
                                                 time.perf_counter() - started, len(shown), plan.notices),
                cards: render.experiment_cards(summ),
                heatmap: plot(plots.injection_heatmap(exp.heatmap_data(records, m.pipe.step_answers), plan.policy)),
                rates: plot(plots.rate_bars(exp.rates_data(summ))),
                table: shown,
                download: str(out),
            }

        run_btn.click(run, [model, upload, policy, step, seed, constrained],
                      [status, cards, heatmap, rates, table, download], api_name="experiment", concurrency_limit=1)

        def model_steps(name):  # another model: its steps to pick from, and the last model's results emptied
            m = models.get(name)
            return {step: gr.Dropdown(choices=m.pipe.steps if m and m.pipe else [], value=None), status: "", cards: "",
                    heatmap: None, rates: None, table: None, download: None}

        model.change(model_steps, model, [step, status, cards, heatmap, rates, table, download], queue=False,
                     api_visibility="private")
